"""The roles and what each may do (DESIGN.md section 2): plain vocabulary, no database, no web.
Every route declares one permission; the permission matrix test
(tests/auth/test_permission_matrix.py) walks every route and every role against this table.

What a permission covers:
- STUDY_READ: studies, their sites (only the caller's, for site-scoped roles), protocol versions.
- PARTICIPANT_READ: participants, their visits, adverse events and assessments.
- SESSION_READ: dosing sessions, their doses and vital readings.
- NOTE_READ: therapist notes (psychotherapy content: therapists, clinicians and the study-wide
  monitors, not coordinators or the pharmacist).
- HISTORY_READ: the audit history of one record; the record's own read permission and site
  scope apply too (a coordinator reads no note's history), unless the caller holds AUDIT_READ.
- AUDIT_READ: the whole audit trail; only for roles that see every site.
- PRESENCE_ATTEST_FOR: attesting a therapist's presence for them, with a reason (the site
  clinician); a therapist attests their own presence by signing in again (SESSION_RUN).
- ALERT_READ: listing and reading alerts, of the kinds the caller sees: every kind with
  CLINICAL_ALERT_READ, otherwise only the visit alerts (VISIT_ALERT_KINDS: a visit whose window
  closed without an outcome). So the coordinator, who schedules visits, sees the visit alerts of
  its sites and no clinical one; a clinical alert is as missing to it (404) as another site's.
- CLINICAL_ALERT_READ: safety alerts from the session and event rules (the clinical readers,
  the medical monitor included, not the coordinator); also the live alert stream and the replay
  of a session's findings.
- ALERT_RESPOND: acknowledging and resolving the alerts the caller sees: the site clinician,
  the medical monitor, who receives the critical alerts nobody acknowledged in time (DESIGN.md
  section 4), and the coordinator (visit alerts only, by the rule of ALERT_READ).
- AE_CODE: MedDRA coding of adverse events (docs/exports.md): the medical monitor, study-wide
  and blinded, who reviews every event's medical sense. Coding adds the dictionary's
  classification beside what the site recorded and changes none of it. Not the sponsor role:
  it stays read-only (DESIGN.md section 2); not site staff: coding is one study-wide convention.
- STUDY_MANAGE: studies, sites, protocol versions, and moving a participant to an amendment.
- EXPORT_READ: the sponsor exports (SDTM datasets, FHIR bulk data; docs/exports.md):
  study-wide, read-only, no direct identifiers; who pulled what is audited. The sponsor's data
  manager (DESIGN.md section 2).
- REPORT_READ: session reports (PDF, PNG) and the study summary (docs/exports.md, "Session
  reports"): the study-wide monitors (medical monitor, sponsor) and the site clinician and
  coordinator for their own sites' sessions (the alert kinds each role sees); no arm, no note
  text, no participant name in them; each pull is audited.
- SESSION_DISCOVER: a bedside device's one read: the dosing sessions in progress at its site
  (GET /api/v1/devices/me/dosing-sessions: visit, start time, subject id; never an arm), so a
  tablet can pick the session it posts vitals for (docs/devices.md). Devices only: people read
  sessions with SESSION_READ.
- EMERGENCY_UNBLIND: the site clinician's unblinding of one participant of their site in a
  medical emergency (docs/blinding.md); the arm is then shown to that clinician only.
"""

from enum import StrEnum


class Role(StrEnum):
    COORDINATOR = "coordinator"
    THERAPIST = "therapist"
    CLINICIAN = "clinician"
    MEDICAL_MONITOR = "medical_monitor"
    SPONSOR = "sponsor"
    PHARMACIST = "pharmacist"
    DEVICE = "device"
    ADMIN = "admin"


class Permission(StrEnum):
    PUBLIC = "public"  # no credentials: health, login
    AUTHENTICATED = "authenticated"  # any signed-in principal: who am I, log out
    STUDY_READ = "study:read"
    STUDY_MANAGE = "study:manage"
    PARTICIPANT_READ = "participant:read"
    PARTICIPANT_WRITE = "participant:write"
    RANDOMISE = "participant:randomise"
    SESSION_READ = "session:read"
    SESSION_PLAN = "session:plan"
    SESSION_RUN = "session:run"
    SESSION_DISCOVER = "session:discover"
    PRESENCE_ATTEST_FOR = "session:attest-presence-for"
    DOSE_RECORD = "dose:record"
    VITALS_RECORD = "vitals:record"
    VITALS_CORRECT = "vitals:correct"
    AE_WRITE = "adverse_event:write"
    AE_CODE = "adverse_event:code"
    ASSESSMENT_WRITE = "assessment:write"
    NOTE_READ = "note:read"
    NOTE_WRITE = "note:write"
    HISTORY_READ = "history:read"
    AUDIT_READ = "audit:read"
    ALERT_READ = "alert:read"
    CLINICAL_ALERT_READ = "alert:read-clinical"
    ALERT_RESPOND = "alert:respond"
    SIGN = "sign"
    EMERGENCY_UNBLIND = "participant:emergency-unblind"
    USER_MANAGE = "user:manage"
    NOTIFICATION_MANAGE = "notification:manage"  # webhook and e-mail subscriptions, dead letters
    EXPORT_READ = "export:read"
    REPORT_READ = "report:read"


R = Role
_HUMANS = frozenset(Role) - {R.DEVICE}
_CLINICAL_READERS = frozenset(
    {R.COORDINATOR, R.THERAPIST, R.CLINICIAN, R.MEDICAL_MONITOR, R.SPONSOR, R.PHARMACIST}
)
_SITE_STAFF = frozenset({R.COORDINATOR, R.THERAPIST, R.CLINICIAN})

ROLE_PERMISSIONS: dict[Permission, frozenset[Role]] = {
    Permission.PUBLIC: frozenset(Role),
    Permission.AUTHENTICATED: frozenset(Role),
    Permission.STUDY_READ: _HUMANS,
    Permission.STUDY_MANAGE: frozenset({R.ADMIN}),
    Permission.PARTICIPANT_READ: _CLINICAL_READERS,
    Permission.PARTICIPANT_WRITE: frozenset({R.COORDINATOR}),
    Permission.RANDOMISE: frozenset({R.COORDINATOR}),
    Permission.SESSION_READ: _CLINICAL_READERS,
    Permission.SESSION_PLAN: _SITE_STAFF,
    Permission.SESSION_RUN: frozenset({R.THERAPIST, R.CLINICIAN}),
    # A bedside tablet lists the sessions in progress at its site, to post vitals for one.
    Permission.SESSION_DISCOVER: frozenset({R.DEVICE}),
    Permission.PRESENCE_ATTEST_FOR: frozenset({R.CLINICIAN}),
    Permission.DOSE_RECORD: frozenset({R.THERAPIST, R.CLINICIAN}),
    # A bedside tablet posts vitals and lists its site's sessions in progress, nothing else
    # (DESIGN.md section 2): marking a reading
    # entered in error is a person's correction, hence a permission of its own.
    Permission.VITALS_RECORD: _SITE_STAFF | {R.DEVICE},
    Permission.VITALS_CORRECT: _SITE_STAFF,
    Permission.AE_WRITE: _SITE_STAFF,
    Permission.AE_CODE: frozenset({R.MEDICAL_MONITOR}),
    Permission.ASSESSMENT_WRITE: _SITE_STAFF,
    Permission.NOTE_READ: frozenset({R.THERAPIST, R.CLINICIAN, R.MEDICAL_MONITOR, R.SPONSOR}),
    Permission.NOTE_WRITE: frozenset({R.THERAPIST, R.CLINICIAN}),
    Permission.HISTORY_READ: _CLINICAL_READERS | {R.ADMIN},
    Permission.AUDIT_READ: frozenset({R.SPONSOR, R.MEDICAL_MONITOR, R.ADMIN}),
    Permission.ALERT_READ: _CLINICAL_READERS,
    Permission.CLINICAL_ALERT_READ: _CLINICAL_READERS - {R.COORDINATOR},
    Permission.ALERT_RESPOND: frozenset({R.CLINICIAN, R.MEDICAL_MONITOR, R.COORDINATOR}),
    Permission.SIGN: frozenset({R.THERAPIST, R.CLINICIAN}),
    Permission.EMERGENCY_UNBLIND: frozenset({R.CLINICIAN}),
    Permission.USER_MANAGE: frozenset({R.ADMIN}),
    Permission.NOTIFICATION_MANAGE: frozenset({R.ADMIN}),
    Permission.EXPORT_READ: frozenset({R.SPONSOR}),
    Permission.REPORT_READ: frozenset({R.MEDICAL_MONITOR, R.SPONSOR, R.CLINICIAN, R.COORDINATOR}),
}

# Roles that see every site; the others see only the sites they are assigned to.
ALL_SITES_ROLES = frozenset({R.MEDICAL_MONITOR, R.SPONSOR, R.ADMIN})
# Roles that see treatment arms; everybody else sees them masked, everywhere.
UNBLINDED_ROLES = frozenset({R.PHARMACIST})


# What an audit trail export reveals beyond what every AUDIT_READ role reads (docs/audit-trail.md,
# "Withheld fields"), asked for by name: arms to the unblinded only (no AUDIT_READ role today, so
# the API's exports withhold them always), therapist note text to the medical monitor, client
# addresses to the administrator (security review). Everything else an export withholds.
AUDIT_EXPORT_REVEALS: dict[str, frozenset[Role]] = {
    "arms": UNBLINDED_ROLES,
    "note_text": frozenset({R.MEDICAL_MONITOR}),
    "client_address": frozenset({R.ADMIN}),
}


# The alerts about the visit schedule, not about a participant's safety: seen (and answered) by
# every role with ALERT_READ; every other kind needs CLINICAL_ALERT_READ.
VISIT_ALERT_KINDS = frozenset({"visit_missed"})


def allows(role: Role, permission: Permission) -> bool:
    return role in ROLE_PERMISSIONS[permission]


def sees_alert_kind(role: Role, kind: str) -> bool:
    return kind in VISIT_ALERT_KINDS or allows(role, Permission.CLINICAL_ALERT_READ)
