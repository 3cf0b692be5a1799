"""record status check

The database refuses a record_status other than 'valid' and 'entered_in_error' on every table
that has one, so no writer (a script, a manual fix) can leave a record that is neither.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 20:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("adverse_events", "assessments", "doses", "therapist_notes", "vital_readings")
CONDITION = "record_status IN ('valid', 'entered_in_error')"


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.create_check_constraint(op.f(f"ck_{table}_record_status"), CONDITION)


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(f"ck_{table}_record_status"), type_="check")
