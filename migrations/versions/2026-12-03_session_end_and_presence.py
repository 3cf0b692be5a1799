"""session end reason and therapist presence

A dosing session ended without the return-to-baseline attestation keeps why
(``dosing_sessions.end_reason``); each therapist of the pair is attested present on their own
(``lead_present_at``, ``co_present_at``).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dosing_sessions") as batch:
        batch.add_column(sa.Column("end_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("lead_present_at", app.models.base.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("co_present_at", app.models.base.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dosing_sessions") as batch:
        batch.drop_column("co_present_at")
        batch.drop_column("lead_present_at")
        batch.drop_column("end_reason")
