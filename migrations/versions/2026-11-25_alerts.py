"""alerts

The alerts table: one row per (rule, session) finding until it is resolved. A partial unique
index on dedup_key over the alerts not yet resolved (on both SQLite and PostgreSQL) keeps two
concurrent writers from opening two alerts for one finding.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 13:59:39.210664
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("participant_id", sa.Uuid(), nullable=False),
        sa.Column("dosing_session_id", sa.Uuid(), nullable=True),
        sa.Column("site_id", sa.Uuid(), nullable=False),
        sa.Column("protocol_version_id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("dedup_key", sa.String(length=300), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("finding", sa.JSON(), nullable=False),
        sa.Column("first_found_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_found_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("acknowledge_by", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by_id", sa.Uuid(), nullable=True),
        sa.Column("acknowledgement_note", sa.Text(), nullable=True),
        sa.Column("resolved_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_by_id", sa.Uuid(), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("escalated_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["acknowledged_by_id"], ["users.id"], name=op.f("fk_alerts_acknowledged_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["dosing_session_id"],
            ["dosing_sessions.id"],
            name=op.f("fk_alerts_dosing_session_id_dosing_sessions"),
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.id"],
            name=op.f("fk_alerts_participant_id_participants"),
        ),
        sa.ForeignKeyConstraint(
            ["protocol_version_id"],
            ["protocol_versions.id"],
            name=op.f("fk_alerts_protocol_version_id_protocol_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_id"], ["users.id"], name=op.f("fk_alerts_resolved_by_id_users")
        ),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_alerts_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alerts_dosing_session_id"), ["dosing_session_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_alerts_participant_id"), ["participant_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_alerts_site_id"), ["site_id", "status"], unique=False)
        batch_op.create_index(
            "uq_alerts_dedup_key_not_resolved",
            ["dedup_key"],
            unique=True,
            postgresql_where=sa.text("status != 'resolved'"),
            sqlite_where=sa.text("status != 'resolved'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_alerts_dedup_key_not_resolved",
            postgresql_where=sa.text("status != 'resolved'"),
            sqlite_where=sa.text("status != 'resolved'"),
        )
        batch_op.drop_index(batch_op.f("ix_alerts_site_id"))
        batch_op.drop_index(batch_op.f("ix_alerts_participant_id"))
        batch_op.drop_index(batch_op.f("ix_alerts_dosing_session_id"))

    op.drop_table("alerts")
