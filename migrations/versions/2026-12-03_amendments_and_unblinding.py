"""amendments and unblinding

A protocol version label names one content: the database refuses a second version of a
protocol under a label already stored (``uq_protocol_versions_protocol_key_version_label``).
A participant moved to an amendment keeps its re-consent date (``participants.reconsented_on``);
an emergency unblinding records when, by whom and why (``participants.unblinded_at``,
``unblinded_by_id``, ``unblinding_reason_code``, ``unblinding_justification``), never the arm.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _refuse_shared_labels() -> None:
    """Stop with what to fix if versions stored before labels were checked share one: the
    stored versions are never changed behind the trail's back."""
    shared = op.get_bind().execute(
        sa.text(
            "SELECT protocol_key, version_label, COUNT(*) FROM protocol_versions "
            "GROUP BY protocol_key, version_label HAVING COUNT(*) > 1 "
            "ORDER BY protocol_key, version_label"
        )
    )
    found = [f"{key} {label!r} ({count} versions)" for key, label, count in shared]
    if found:
        raise RuntimeError(
            "protocol versions with other content share a version label: "
            + "; ".join(found)
            + ". A label must name one content: give each of these versions its own label "
            "(a reviewed, recorded data correction), then run the migration again"
        )


def upgrade() -> None:
    _refuse_shared_labels()
    with op.batch_alter_table("protocol_versions") as batch:
        batch.create_unique_constraint(
            batch.f("uq_protocol_versions_protocol_key_version_label"),
            ["protocol_key", "version_label"],
        )
    with op.batch_alter_table("participants") as batch:
        batch.add_column(sa.Column("reconsented_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("unblinded_at", app.models.base.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("unblinded_by_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("unblinding_reason_code", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("unblinding_justification", sa.Text(), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_participants_unblinded_by_id_users"), "users", ["unblinded_by_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("participants") as batch:
        batch.drop_constraint(batch.f("fk_participants_unblinded_by_id_users"), type_="foreignkey")
        batch.drop_column("unblinding_justification")
        batch.drop_column("unblinding_reason_code")
        batch.drop_column("unblinded_by_id")
        batch.drop_column("unblinded_at")
        batch.drop_column("reconsented_on")
    with op.batch_alter_table("protocol_versions") as batch:
        batch.drop_constraint(
            batch.f("uq_protocol_versions_protocol_key_version_label"), type_="unique"
        )
