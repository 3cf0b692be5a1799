"""Protocol versions in the database: immutable, content-addressed by SHA-256."""

import uuid
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.errors import Conflict, NotFound
from app.models import ProtocolVersion
from app.protocols.loader import LoadedProtocol, load_protocol_file
from app.protocols.schema import Protocol

PROTOCOL_LOCK = 0x56494750  # "VIGP": held on PostgreSQL by a transaction that stores a version
_parsed: dict[str, Protocol] = {}
_by_version_id: dict[uuid.UUID, Protocol] = {}


def store(session: Session, loaded: LoadedProtocol) -> tuple[ProtocolVersion, bool]:
    """Store a loaded protocol; the same bytes again is a no-op, changed bytes an amendment.
    An amendment needs a label of its own: other content under a label already stored for
    the protocol is refused, so a label always names one content.

    On PostgreSQL the transaction first takes an advisory lock, held to its end, so replicas
    loading the same files at startup store each version once: the others wait, then find it.
    (SQLite's transactions take the write lock when they begin.)"""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PROTOCOL_LOCK})
    existing = session.scalar(
        select(ProtocolVersion).where(ProtocolVersion.sha256 == loaded.sha256)
    )
    if existing is not None:
        return existing, False
    key = loaded.protocol.protocol.id
    label = loaded.protocol.protocol.version
    taken = session.scalar(
        select(ProtocolVersion)
        .where(ProtocolVersion.protocol_key == key, ProtocolVersion.version_label == label)
        .limit(1)
    )
    if taken is not None:
        raise Conflict(
            f"protocol {key} version {label!r} is already loaded with other content "
            f"(sha256 {taken.sha256[:12]}, sequence {taken.sequence}); {loaded.source} differs "
            f"from it. An amendment needs a new version label: change protocol.version in the "
            "file and load it again"
        )
    last = session.scalar(
        select(func.max(ProtocolVersion.sequence)).where(ProtocolVersion.protocol_key == key)
    )
    version = ProtocolVersion(
        protocol_key=key,
        sequence=(last or 0) + 1,
        version_label=label,
        title=loaded.protocol.protocol.title,
        sha256=loaded.sha256,
        source_name=Path(loaded.source).name,
        source_text=loaded.source_text,
        definition=loaded.protocol.model_dump(mode="json"),
    )
    session.add(version)
    session.flush()
    _parsed[version.sha256] = loaded.protocol
    return version, True


def load_directory(session: Session, directory: Path) -> list[tuple[ProtocolVersion, bool]]:
    return [store(session, load_protocol_file(path)) for path in sorted(directory.glob("*.yaml"))]


def definition(version: ProtocolVersion) -> Protocol:
    """The validated protocol of a stored version (parsed once per process)."""
    protocol = _parsed.get(version.sha256)
    if protocol is None:
        protocol = _parsed[version.sha256] = Protocol.model_validate(version.definition)
    return protocol


def definition_of(session: Session, version_id: uuid.UUID) -> Protocol:
    """The validated protocol of a version id. A version never changes, so each id is looked up
    once per process: every reading's evaluation asks for its session's protocol."""
    protocol = _by_version_id.get(version_id)
    if protocol is None:
        protocol = _by_version_id[version_id] = definition(get_version(session, version_id))
    return protocol


def get_version(session: Session, version_id: uuid.UUID) -> ProtocolVersion:
    version = session.get(ProtocolVersion, version_id)
    if version is None:
        raise NotFound(f"protocol version {version_id} does not exist")
    return version


def latest_version(session: Session, protocol_key: str) -> ProtocolVersion:
    version = session.scalar(
        select(ProtocolVersion)
        .where(ProtocolVersion.protocol_key == protocol_key)
        .order_by(ProtocolVersion.sequence.desc())
        .limit(1)
    )
    if version is None:
        raise NotFound(
            f"no version of protocol {protocol_key!r} is loaded; run `vigil protocol load FILE`"
        )
    return version
