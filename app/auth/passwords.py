"""Passwords: argon2 hashes (pwdlib), the shortest password accepted, and the marker of an
account that never signs in with one."""

from pwdlib import PasswordHash

password_hash = PasswordHash.recommended()
# Stored instead of a hash for accounts that never sign in with a password (devices). No hasher
# recognises it, so no password can match it.
UNUSABLE_PASSWORD = "!no-password"  # noqa: S105 - a marker, not a secret
MIN_PASSWORD_LENGTH = 12


def password_usable(stored_hash: str) -> bool:
    return any(hasher.identify(stored_hash) for hasher in password_hash.hashers)
