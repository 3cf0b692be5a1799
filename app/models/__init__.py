"""Every table, registered on one MetaData (import this package, not the modules)."""

from app.models.alert import Alert, AlertOccurrence, OccurrenceEvidence
from app.models.audit import AuditRecord
from app.models.base import Base
from app.models.clinical import AdverseEvent, Assessment, TherapistNote
from app.models.dosing import Dose, DosingSession
from app.models.idempotency import IdempotencyKey
from app.models.notification import (
    NotificationDelivery,
    NotificationEvent,
    NotificationSubscription,
)
from app.models.participant import Participant, Visit
from app.models.signature import Signature
from app.models.study import ProtocolVersion, Site, Study
from app.models.user import AccessToken, DeviceClock, User, user_sites
from app.models.vitals import VitalReading

__all__ = [
    "AccessToken",
    "AdverseEvent",
    "Alert",
    "AlertOccurrence",
    "Assessment",
    "AuditRecord",
    "Base",
    "DeviceClock",
    "Dose",
    "DosingSession",
    "IdempotencyKey",
    "NotificationDelivery",
    "NotificationEvent",
    "NotificationSubscription",
    "OccurrenceEvidence",
    "Participant",
    "ProtocolVersion",
    "Signature",
    "Site",
    "Study",
    "TherapistNote",
    "User",
    "Visit",
    "VitalReading",
    "user_sites",
]
