"""occurrence findings

Each alert occurrence keeps the finding it was taken in for (``alert_occurrences.finding``: its
time, severity, message, observed values, thresholds, evidence), so an alert shows every
occurrence without the audit trail. Occurrences taken in before have none (null).

``alerts.evidence_entered_in_error`` becomes ``alerts.disproved``: a critical alert nobody had
acknowledged whose occurrences were all withdrawn, for any reason (a record entered in error, due
times met by readings that arrived late), stays open saying why.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alert_occurrences") as batch:
        batch.add_column(sa.Column("finding", sa.JSON(), nullable=True))
    with op.batch_alter_table("alerts") as batch:
        batch.alter_column(
            "evidence_entered_in_error", new_column_name="disproved", existing_type=sa.Text()
        )


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.alter_column(
            "disproved", new_column_name="evidence_entered_in_error", existing_type=sa.Text()
        )
    with op.batch_alter_table("alert_occurrences") as batch:
        batch.drop_column("finding")
