"""MedDRA coding of adverse events

Vigil ships no MedDRA dictionary (it is licensed): a coder fills in the version and the LLT, PT,
HLT, HLGT and primary SOC terms and codes of an adverse event (PUT
/api/v1/adverse-events/{id}/coding). Every column is nullable: an event stays uncoded until then.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("meddra_version", 8),
    ("meddra_llt", 100),
    ("meddra_llt_code", 8),
    ("meddra_pt", 100),
    ("meddra_pt_code", 8),
    ("meddra_hlt", 100),
    ("meddra_hlt_code", 8),
    ("meddra_hlgt", 100),
    ("meddra_hlgt_code", 8),
    ("meddra_soc", 100),
    ("meddra_soc_code", 8),
)


def upgrade() -> None:
    with op.batch_alter_table("adverse_events") as batch:
        for name, length in COLUMNS:
            batch.add_column(sa.Column(name, sa.String(length), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("adverse_events") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
