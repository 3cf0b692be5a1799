"""Storing FHIR vital-signs Observations as readings, through the vitals service (the same
checks, audit records and rule evaluation as a reading posted to Vigil's own API): one
Observation, or the entries of a Bundle, ``batch`` (each entry on its own, as Vigil's batch
endpoint) or ``transaction`` (all stored, or none)."""

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.auth.scope import load_in_scope
from app.config import get_settings
from app.errors import VigilError
from app.exports.fhir.resources import observations as exported_observations
from app.fhir_input.mapping import MappedReading, map_observation
from app.fhir_input.outcome import FhirRefusal, Issue, operation_outcome, refusal_of
from app.models import DosingSession, VitalReading
from app.vitals import service as vitals

BUNDLE_TYPES = ("batch", "transaction")
STATUS_TEXT = {200: "200 OK", 201: "201 Created"}


@dataclass(frozen=True)
class Stored:
    """An Observation stored (201) or recognised as a replay (200), as Vigil now holds it."""

    status_code: int
    observation: dict[str, Any]

    @property
    def location(self) -> str:
        return f"Observation/{self.observation['id']}"


def _as_stored(
    session: Session, reading: VitalReading, dosing_session: DosingSession, suffix: str, new: bool
) -> Stored:
    wanted = f"{reading.id}-{suffix}"
    found = next(
        resource
        for resource in exported_observations(reading, dosing_session.participant_id)
        if resource["id"] == wanted
    )
    return Stored(201 if new else 200, found)


def _session_of(
    session: Session, principal: Principal, mapped: MappedReading, at: str
) -> DosingSession:
    try:
        found: DosingSession = load_in_scope(
            session, principal, DosingSession, mapped.dosing_session_id, "dosing session"
        )
    except VigilError as exc:
        issue = Issue("not-found", exc.detail, f"{at}.encounter")
        raise FhirRefusal(exc.status_code, [issue]) from None
    return found


def _store(
    session: Session, principal: Principal, mapped: MappedReading, source: str, at: str
) -> Stored:
    dosing_session = _session_of(session, principal, mapped, at)
    try:
        reading, new = vitals.ingest_one(session, dosing_session, mapped.reading, source)
    except VigilError as exc:
        raise refusal_of(exc, mapped.expressions) from None
    return _as_stored(session, reading, dosing_session, mapped.suffix, new)


def store_observation(session: Session, principal: Principal, resource: Any, source: str) -> Stored:
    """POST Observation: stored once (a replay of the same identifier and values answers 200)."""
    return _store(session, principal, map_observation(resource), source, "Observation")


# --- Bundles -----------------------------------------------------------------------------------


def _entries(bundle: Any) -> tuple[str, list[Any]]:
    """(the Bundle's type, its entries), or FhirRefusal for an envelope Vigil cannot read."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        kind = bundle.get("resourceType") if isinstance(bundle, dict) else type(bundle).__name__
        raise FhirRefusal(
            400, [Issue("structure", f"POST to the FHIR base takes a Bundle, not {kind}")]
        )
    kind = bundle.get("type")
    if kind not in BUNDLE_TYPES:
        raise FhirRefusal(
            400,
            [
                Issue(
                    "value",
                    f"Bundle.type {kind!r}: Vigil processes batch and transaction Bundles",
                    "Bundle.type",
                )
            ],
        )
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise FhirRefusal(400, [Issue("structure", "Bundle.entry is a list", "Bundle.entry")])
    limit = get_settings().batch_size_max
    if len(entries) > limit:
        raise FhirRefusal(
            413,
            [
                Issue(
                    "too-costly",
                    f"a Bundle holds at most {limit} entries, this one has {len(entries)}; split "
                    "it (each Observation keeps its identifier, so resending is safe)",
                    "Bundle.entry",
                )
            ],
        )
    return kind, entries


def _entry_resource(entry: Any, at: str) -> Any:
    """The entry's resource, if its request is the one Vigil serves: POST Observation."""
    request = entry.get("request") if isinstance(entry, dict) else None
    if (
        not isinstance(request, dict)
        or request.get("method") != "POST"
        or str(request.get("url", "")).rstrip("/") not in ("Observation", "fhir/Observation")
    ):
        raise FhirRefusal(
            400,
            [
                Issue(
                    "not-supported",
                    "each entry's request is {'method': 'POST', 'url': 'Observation'}",
                    f"{at}.request",
                )
            ],
        )
    return entry.get("resource")


def _entry_response(outcome: Stored | FhirRefusal) -> dict[str, Any]:
    if isinstance(outcome, FhirRefusal):
        status = f"{outcome.status_code}"
        return {"response": {"status": status, "outcome": operation_outcome(outcome.issues)}}
    return {
        "fullUrl": outcome.location,
        "resource": outcome.observation,
        "response": {"status": STATUS_TEXT[outcome.status_code], "location": outcome.location},
    }


def _mapped(entries: list[Any]) -> list[MappedReading | FhirRefusal]:
    found: list[MappedReading | FhirRefusal] = []
    for i, entry in enumerate(entries):
        at = f"Bundle.entry[{i}]"
        try:
            found.append(map_observation(_entry_resource(entry, at), f"{at}.resource"))
        except FhirRefusal as refusal:
            found.append(refusal)
    return found


def _store_all(
    session: Session, principal: Principal, mapped: list[MappedReading | FhirRefusal], source: str
) -> list[Stored | FhirRefusal]:
    """Each session's readings through one vitals batch (one rule evaluation per session),
    the outcomes in entry order."""
    outcomes: list[Stored | FhirRefusal | None] = [
        item if isinstance(item, FhirRefusal) else None for item in mapped
    ]
    by_session: dict[uuid.UUID, list[int]] = {}
    for i, item in enumerate(mapped):
        if isinstance(item, MappedReading):
            by_session.setdefault(item.dosing_session_id, []).append(i)
    for positions in by_session.values():
        first = mapped[positions[0]]
        assert isinstance(first, MappedReading)
        try:
            dosing_session = _session_of(session, principal, first, f"Bundle.entry[{positions[0]}]")
            readings = [mapped[i].reading for i in positions]  # type: ignore[union-attr]
            result = vitals.ingest_batch(session, dosing_session, readings, source)
        except (FhirRefusal, VigilError) as exc:
            for i in positions:
                item = mapped[i]
                assert isinstance(item, MappedReading)
                outcomes[i] = (
                    FhirRefusal(
                        exc.status_code,
                        [
                            Issue(
                                issue.code,
                                issue.diagnostics,
                                f"Bundle.entry[{i}].resource.encounter",
                            )
                            for issue in exc.issues
                        ],
                    )
                    if isinstance(exc, FhirRefusal)
                    else refusal_of(exc, item.expressions)
                )
            continue
        for i, outcome in zip(positions, result.results, strict=True):
            item = mapped[i]
            assert isinstance(item, MappedReading)
            if outcome.error is not None:
                outcomes[i] = refusal_of(outcome.error, item.expressions)
            else:
                assert outcome.reading is not None
                new = outcome.status == "accepted"
                outcomes[i] = _as_stored(session, outcome.reading, dosing_session, item.suffix, new)
    return [outcome for outcome in outcomes if outcome is not None]


def process_bundle(
    session: Session, principal: Principal, bundle: Any, source: str
) -> dict[str, Any]:
    """The batch-response or transaction-response Bundle. A batch reports each entry on its
    own, a refused one costing the others nothing; a transaction raises FhirRefusal naming
    every entry at fault, and the request's transaction, rolled back, stores none."""
    kind, entries = _entries(bundle)
    outcomes = _store_all(session, principal, _mapped(entries), source)
    if kind == "transaction":
        refused = [o for o in outcomes if isinstance(o, FhirRefusal)]
        if refused:
            issues = [issue for refusal in refused for issue in refusal.issues]
            statuses = {refusal.status_code for refusal in refused}
            raise FhirRefusal(statuses.pop() if len(statuses) == 1 else 400, issues)
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": f"{kind}-response",
        "entry": [_entry_response(outcome) for outcome in outcomes],
    }


def read_observation(session: Session, principal: Principal, observation_id: str) -> dict[str, Any]:
    """A stored Observation by its id ('<reading id>-<suffix>'); 404 if none is visible."""
    missing = FhirRefusal(404, [Issue("not-found", f"Observation {observation_id} does not exist")])
    reading_id, _, suffix = observation_id.rpartition("-")
    try:
        key = uuid.UUID(reading_id)
    except ValueError:
        raise missing from None
    try:
        reading: VitalReading = load_in_scope(session, principal, VitalReading, key, "reading")
    except VigilError:
        raise missing from None
    dosing_session = session.get_one(DosingSession, reading.dosing_session_id)
    try:
        return _as_stored(session, reading, dosing_session, suffix, False).observation
    except StopIteration:
        raise missing from None
