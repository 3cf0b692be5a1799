"""Fixtures for tests that sign in (defined in tests/auth/accounts.py)."""

from tests.auth.accounts import (  # noqa: F401 - fixtures
    admin,
    admin_headers,
    http_client,
    moved_clock,
    settings_env,
    site,
)
