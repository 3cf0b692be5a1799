"""Every dataset's row builder by name (``rows`` for the subject data, ``design_rows`` for the
trial design and what is made of it), and how many rows each yields."""

from sqlalchemy.orm import Session

from app.exports.sdtm import design_rows, rows
from app.exports.sdtm.rows import ExportCounts
from app.models import Study

BUILDERS = {**rows.BUILDERS, **design_rows.BUILDERS}


def row_count(session: Session, study: Study, domain: str) -> int:
    """How many rows the builder of ``domain`` yields. The trial design datasets, SV and SE are
    a few rows per protocol or participant: counted by building them (masked, the same count)."""
    if domain in design_rows.BUILDERS:
        return sum(1 for _ in design_rows.BUILDERS[domain](session, study, False, ExportCounts()))
    return rows.row_count(session, study, domain)
