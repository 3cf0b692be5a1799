"""news2 observations

The two NEWS2 observations that are not measures, on each vital reading: whether the participant
breathed supplemental oxygen and whether they were newly confused (ACVPU "C" or worse). Both may
be empty: not recorded with that reading.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 16:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("vital_readings", sa.Column("supplemental_oxygen", sa.Boolean(), nullable=True))
    op.add_column("vital_readings", sa.Column("new_confusion", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("vital_readings") as batch:
        batch.drop_column("new_confusion")
        batch.drop_column("supplemental_oxygen")
