"""Time-ordered identifiers: UUIDv7 keeps inserts append-only in B-trees (DESIGN.md section 6)."""

import uuid

import uuid6


def new_id() -> uuid.UUID:
    return uuid.UUID(bytes=uuid6.uuid7().bytes)
