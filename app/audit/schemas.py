import uuid
from datetime import datetime
from typing import Any

from app.schemas import ReadModel


class AuditRecordRead(ReadModel):
    id: uuid.UUID
    occurred_at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str | None
    request_id: str | None
