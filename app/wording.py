"""Wording shared by the messages people read."""


def with_article(phrase: str) -> str:
    """``phrase`` after "a" or "an", with underscores read as spaces: "an admin", "an adverse
    event", "a medical monitor". By its first letter, which is right for Vigil's words (roles,
    kinds of record and visit); a word like "user" or "hour" would need more."""
    words = phrase.replace("_", " ")
    return f"{'an' if words[:1].lower() in set('aeiou') else 'a'} {words}"
