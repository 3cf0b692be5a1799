"""alert occurrences

The occurrences an alert has taken in, one row each, instead of a list inside the alert's
finding that grew with every occurrence (and was copied into every audit record of the alert).
Existing lists are carried over; the alerts' findings are left as they were recorded.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 17:05:00
"""

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    occurrences = op.create_table(
        "alert_occurrences",
        sa.Column("alert_id", sa.Uuid(), nullable=False),
        sa.Column("occurrence_hash", sa.String(length=64), nullable=False),
        sa.Column("found_at", app.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_alert_occurrences_alert_id_alerts")
        ),
        sa.PrimaryKeyConstraint("alert_id", "occurrence_hash", name=op.f("pk_alert_occurrences")),
    )
    alerts = sa.table("alerts", sa.column("id", sa.Uuid()), sa.column("finding", sa.JSON()))
    rows = []
    for alert_id, finding in op.get_bind().execute(sa.select(alerts.c.id, alerts.c.finding)):
        if isinstance(finding, str):
            finding = json.loads(finding)
        for key in (finding or {}).get("occurrence_keys") or []:
            moment = str(key).rpartition("#")[0].rpartition("@")[2]
            rows.append(
                {
                    "alert_id": alert_id,
                    "occurrence_hash": hashlib.sha256(str(key).encode()).hexdigest(),
                    "found_at": datetime.fromisoformat(moment),
                }
            )
    if rows:
        op.bulk_insert(occurrences, rows)


def downgrade() -> None:
    op.drop_table("alert_occurrences")
