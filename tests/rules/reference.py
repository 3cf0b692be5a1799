"""Published tables as DESIGN.md (section 1) prints them, for the tests to check against."""

# NEWS2 bands, columns scoring 3 | 2 | 1 | 0 | 1 | 2 | 3; "-" is an empty column. SpO2 is scale 1.
NEWS2_COLUMN_SCORES = (3, 2, 1, 0, 1, 2, 3)
NEWS2_TABLE = {
    "RESP": "<=8 | - | 9-11 | 12-20 | - | 21-24 | >=25",
    "OXYSAT": "<=91 | 92-93 | 94-95 | >=96",
    "SYSBP": "<=90 | 91-100 | 101-110 | 111-219 | - | - | >=220",
    "PULSE": "<=40 | - | 41-50 | 51-90 | 91-110 | 111-130 | >=131",
    "TEMP": "<=35.0 | - | 35.1-36.0 | 36.1-38.0 | 38.1-39.0 | >=39.1",
}
# the resolution the table is written at
NEWS2_STEP = {"RESP": 1.0, "OXYSAT": 1.0, "SYSBP": 1.0, "PULSE": 1.0, "TEMP": 0.1}


def news2_bands(code: str) -> list[tuple[float, float, int]]:
    """(lowest, highest, score) per band of the table; open ends are +-infinity."""
    bands = []
    for column, cell in enumerate(c.strip() for c in NEWS2_TABLE[code].split("|")):
        score = NEWS2_COLUMN_SCORES[column]
        if cell == "-":
            continue
        if cell.startswith("<="):
            bands.append((float("-inf"), float(cell[2:]), score))
        elif cell.startswith(">="):
            bands.append((float(cell[2:]), float("inf"), score))
        else:
            low, high = cell.split("-")
            bands.append((float(low), float(high), score))
    return bands


def news2_zero_band(code: str) -> tuple[float, float]:
    low, high, _ = next(band for band in news2_bands(code) if band[2] == 0)
    return low, high
