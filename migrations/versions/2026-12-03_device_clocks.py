"""Device clocks: each bedside device's estimated clock offset, and on each reading the offset
applied to it and whether it was beyond the tolerance

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.models.base import UTCDateTime

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "device_clocks",
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("offset_seconds", sa.Double(), nullable=False),
        sa.Column("measured_at", UTCDateTime(), nullable=False),
        sa.Column("samples", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["users.id"], name=op.f("fk_device_clocks_device_id_users")
        ),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_device_clocks")),
    )
    with op.batch_alter_table("vital_readings") as batch:
        batch.add_column(sa.Column("device_clock_offset_seconds", sa.Double(), nullable=True))
        batch.add_column(
            sa.Column(
                "device_clock_flagged", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("vital_readings") as batch:
        batch.drop_column("device_clock_flagged")
        batch.drop_column("device_clock_offset_seconds")
    op.drop_table("device_clocks")
