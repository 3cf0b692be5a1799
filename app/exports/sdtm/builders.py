"""Every dataset's row builder, by dataset name (the parent domains in ``rows``, the
supplemental qualifiers in ``supplemental``), and how many rows each yields."""

from sqlalchemy.orm import Session

from app.exports.sdtm import rows, supplemental
from app.exports.sdtm.rows import ExportCounts
from app.models import Study

BUILDERS = {
    **rows.BUILDERS,
    "SUPPAE": supplemental.suppae_rows,
    "SUPPVS": supplemental.suppvs_rows,
}


def row_count(session: Session, study: Study, domain: str) -> int:
    """How many rows the builder of ``domain`` yields, in the builder's transaction: counted in
    the database for the parent domains; a SUPP dataset, whose rows depend on the text and the
    timing of each record, is built once to count it (streamed, in constant memory)."""
    if domain in rows.BUILDERS:
        return rows.row_count(session, study, domain)
    return sum(1 for _ in BUILDERS[domain](session, study, False, ExportCounts()))
