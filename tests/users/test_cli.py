"""`vigil device create` and `vigil token revoke`, on SQLite and PostgreSQL."""

import pytest
from sqlalchemy import select

from app.auth import tokens
from app.auth.principal import site_ids_of
from app.db import unit_of_work
from app.models import AccessToken, AuditRecord, User
from tests.factories.trial import make_site, make_study
from tests.test_cli import migrated_url, run, use_database  # noqa: F401 - fixtures


@pytest.fixture
def site_code(migrated_url: str) -> str:  # noqa: F811 - the fixture imported above
    with unit_of_work(actor="test") as session:
        make_site(session, make_study(session, code="CLI-D"), code="S01")
    return "S01"


def test_device_create_prints_its_token_once(site_code: str):
    result = run("device", "create", "tablet-s01-1", "--site", site_code)
    assert result.exit_code == 0, result.output
    info, token = result.stdout.strip().splitlines()
    assert info.startswith("created device tablet-s01-1 at site S01 id ")
    assert token.startswith("vgl_d_")
    assert "shown this once" in result.stderr
    with unit_of_work(actor="test") as session:
        found = tokens.resolve(session, token)
        assert found is not None
        row, device = found.token, found.user
        assert (device.role, row.kind) == ("device", "device")
        assert len(site_ids_of(session, device.id)) == 1 == len(found.site_ids)
        assert token not in str(session.scalars(select(AccessToken.token_hash)).all())

    again = run("device", "create", "tablet-s01-1", "--site", site_code)
    assert again.exit_code == 1
    assert "is taken" in again.stderr
    bad = run("device", "create", "no spaces", "--site", site_code)
    assert bad.exit_code == 1
    assert "device name" in bad.stderr
    nowhere = run("device", "create", "tablet-x", "--site", "S99")
    assert nowhere.exit_code == 1
    assert "no site 'S99'" in nowhere.stderr


def test_token_revoke(site_code: str):
    created = run("device", "create", "tablet-s01-2", "--site", site_code)
    token = created.stdout.strip().splitlines()[-1]
    with unit_of_work(actor="test") as session:
        found = tokens.resolve(session, token)
        assert found is not None
        token_id = str(found.token.id)

    result = run("token", "revoke", token_id, "--reason", "tablet stolen")
    assert result.exit_code == 0, result.output
    assert f"revoked device token {token_id} (tablet-s01-2) of tablet-s01-2" in result.stdout
    with unit_of_work(actor="test") as session:
        assert tokens.resolve(session, token) is None
        record = session.scalar(
            select(AuditRecord).where(
                AuditRecord.entity_id == token_id, AuditRecord.action == "revoke"
            )
        )
        assert (record.actor, record.reason) == ("cli", "tablet stolen")

    again = run("token", "revoke", token_id, "--reason", "tablet stolen")
    assert again.exit_code == 1
    assert "already revoked" in again.stderr
    assert run("token", "revoke", token_id, "--reason", "x").exit_code == 1
    unknown = run("token", "revoke", "0190c0de-0000-7000-8000-000000000000", "--reason", "why")
    assert unknown.exit_code == 1
    assert "does not exist" in unknown.stderr
    with unit_of_work(actor="test") as session:
        assert session.scalar(select(User).where(User.username == "tablet-s01-2")).active
