"""occurrence withdrawal

An alert occurrence can be withdrawn (``withdrawn_at``, ``withdrawn_reason``) when a record
behind it is entered in error, and names those records (``alert_occurrence_evidence``). An
alert whose critical evidence was all entered in error before anyone acknowledged it says so
(``alerts.evidence_entered_in_error``).

Existing occurrences get their evidence where it is known for certain: every occurrence of an
adverse-event or C-SSRS alert is about the one record its latest finding names, and the latest
occurrence of any other alert is the one whose key its latest finding rebuilds. The evidence of
the others stays unknown: they are never withdrawn (docs/alerts.md).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 21:00:00
"""

import hashlib
import json
import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RECORD_KINDS = ("adverse_event", "cssrs")


def upgrade() -> None:
    with op.batch_alter_table("alert_occurrences") as batch:
        batch.add_column(sa.Column("withdrawn_at", app.models.base.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("withdrawn_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("evidence_entered_in_error", sa.Text(), nullable=True))
    evidence = op.create_table(
        "alert_occurrence_evidence",
        sa.Column("alert_id", sa.Uuid(), nullable=False),
        sa.Column("occurrence_hash", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id", "occurrence_hash"],
            ["alert_occurrences.alert_id", "alert_occurrences.occurrence_hash"],
            name=op.f("fk_alert_occurrence_evidence_alert_id_alert_occurrences"),
        ),
        sa.PrimaryKeyConstraint(
            "alert_id", "occurrence_hash", "record_id", name=op.f("pk_alert_occurrence_evidence")
        ),
    )
    with op.batch_alter_table("alert_occurrence_evidence") as batch:
        batch.create_index(
            batch.f("ix_alert_occurrence_evidence_record_id"), ["record_id"], unique=False
        )
    op.bulk_insert(evidence, _known_evidence())


def _known_evidence() -> list[dict[str, object]]:
    bind = op.get_bind()
    alerts = sa.table(
        "alerts",
        sa.column("id", sa.Uuid()),
        sa.column("kind", sa.String()),
        sa.column("finding", sa.JSON()),
    )
    occurrences = sa.table(
        "alert_occurrences",
        sa.column("alert_id", sa.Uuid()),
        sa.column("occurrence_hash", sa.String()),
    )
    hashes: dict[uuid.UUID, list[str]] = {}
    for alert_id, hashed in bind.execute(
        sa.select(occurrences.c.alert_id, occurrences.c.occurrence_hash)
    ):
        hashes.setdefault(alert_id, []).append(hashed)
    rows: list[dict[str, object]] = []
    for alert_id, kind, finding in bind.execute(
        sa.select(alerts.c.id, alerts.c.kind, alerts.c.finding)
    ):
        if isinstance(finding, str):
            finding = json.loads(finding)
        finding = finding or {}
        ids = [str(each) for each in finding.get("evidence") or []]
        if not ids:
            continue
        if kind in RECORD_KINDS:
            known = hashes.get(alert_id, [])
        else:
            key = f"{finding.get('dedup_key')}@{finding.get('at')}#{','.join(ids)}"
            latest = hashlib.sha256(key.encode()).hexdigest()
            known = [latest] if latest in hashes.get(alert_id, []) else []
        rows += [
            {"alert_id": alert_id, "occurrence_hash": hashed, "record_id": uuid.UUID(record_id)}
            for hashed in known
            for record_id in dict.fromkeys(ids)
        ]
    return rows


def downgrade() -> None:
    with op.batch_alter_table("alert_occurrence_evidence") as batch:
        batch.drop_index(batch.f("ix_alert_occurrence_evidence_record_id"))
    op.drop_table("alert_occurrence_evidence")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("evidence_entered_in_error")
    with op.batch_alter_table("alert_occurrences") as batch:
        batch.drop_column("withdrawn_reason")
        batch.drop_column("withdrawn_at")
