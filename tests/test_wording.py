from app.permissions import Role
from app.wording import with_article


def test_the_article_follows_the_first_sound_of_vigils_words():
    assert [with_article(role.value) for role in Role] == [
        "a coordinator",
        "a therapist",
        "a clinician",
        "a medical monitor",
        "a sponsor",
        "a pharmacist",
        "a device",
        "an admin",
    ]
    assert with_article("adverse event") == "an adverse event"
    assert with_article("outcome visit") == "an outcome visit"
    assert with_article("experimental visit") == "an experimental visit"
