"""Splitting a long AETERM for SUPPAE (app/exports/sdtm/long_text.py): properties over any text."""

from hypothesis import given, settings
from hypothesis import strategies as st

from app.exports.sdtm.long_text import split

property_test = settings(database=None, deadline=None, max_examples=300)
texts = st.text(alphabet=st.sampled_from("ab é\t."), max_size=700)


@property_test
@given(texts, st.integers(min_value=2, max_value=250))
def test_the_parts_join_back_to_the_text_and_each_fits(text: str, limit: int) -> None:
    parts = split(text, limit)
    assert "".join(parts) == text
    assert all(len(part) <= limit for part in parts)
    assert all(parts[:-1])  # no empty part before the last


@property_test
@given(texts)
def test_a_part_ends_in_a_blank_only_when_it_is_all_blanks_or_the_last(text: str) -> None:
    for part in split(text)[:-1]:
        assert not part[-1].isspace() or len(part) == 1


@property_test
@given(st.text(alphabet="xyz", max_size=700))
def test_text_without_blanks_is_cut_every_200_characters(text: str) -> None:
    parts = split(text)
    assert [len(part) for part in parts[:-1]] == [200] * (len(parts) - 1)
    assert len(parts) == max(1, -(-len(text) // 200))


def test_a_term_that_fits_is_one_part() -> None:
    assert split("Headache") == ["Headache"]
    assert split("x" * 200) == ["x" * 200]
    assert split("") == [""]
