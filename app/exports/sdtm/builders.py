"""Every dataset's row builder by name (``rows`` for the subject data, ``supplemental`` for
their SUPP qualifiers, ``design_rows`` for the trial design and what is made of it), and how
many rows each yields."""

from sqlalchemy.orm import Session

from app.exports.sdtm import design_rows, rows, supplemental
from app.exports.sdtm.rows import ExportCounts
from app.models import Study

SUPPLEMENTAL = {"SUPPAE": supplemental.suppae_rows, "SUPPVS": supplemental.suppvs_rows}
BUILDERS = {**rows.BUILDERS, **SUPPLEMENTAL, **design_rows.BUILDERS}


def row_count(session: Session, study: Study, domain: str) -> int:
    """How many rows the builder of ``domain`` yields, in the builder's transaction. The subject
    data is counted in the database. The trial design datasets, SV and SE are a few rows per
    protocol or participant, and a SUPP dataset's rows depend on the text and timing of each
    record: those are counted by building them (masked, the same count; streamed)."""
    if domain in rows.BUILDERS:
        return rows.row_count(session, study, domain)
    return sum(1 for _ in BUILDERS[domain](session, study, False, ExportCounts()))
