"""The fixtures of tests/test_cli.py: the CLI pointed at a database of the test's choosing."""

from tests.test_cli import migrated_url, sqlite_url, use_database  # noqa: F401 - fixtures
