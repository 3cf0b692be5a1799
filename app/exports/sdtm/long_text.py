"""Text longer than a character variable holds (200 in XPT v5), split as SDTMIG 3.4 section
4.5.3.2 describes: the first part in the variable itself, each further part in a supplemental
qualifier named after it (AETERM1, AETERM2, ...). Pure: no database.

A part never ends in whitespace when it can be helped (SAS pads character values with blanks,
so a trailing blank would be lost in XPT): the cut moves back before the blanks, which then start
the next part. Joining the parts gives the text back exactly."""

LIMIT = 200


def split(text: str, limit: int = LIMIT) -> list[str]:
    """``text`` in parts of at most ``limit`` characters (one part when it fits)."""
    parts: list[str] = []
    start = 0
    while len(text) - start > limit:
        end = start + limit
        while end > start + 1 and text[end - 1].isspace():
            end -= 1
        parts.append(text[start:end])
        start = end
    parts.append(text[start:])
    return parts
