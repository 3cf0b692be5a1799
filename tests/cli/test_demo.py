"""`vigil demo` as a newcomer runs it: twice, the second time changing nothing."""

from sqlalchemy import func, select

from app.db import unit_of_work
from app.models import AccessToken, AuditRecord, User
from tests.test_cli import run


def _counts() -> list[int | None]:
    with unit_of_work(actor="test") as session:
        return [
            session.scalar(select(func.count()).select_from(table))
            for table in (User, AccessToken, AuditRecord)
        ]


def test_vigil_demo_twice_seeds_once_and_lists_only_the_demo_accounts(migrated_url: str):
    first = run("demo")
    assert first.exit_code == 0, first.output
    before = _counts()

    second = run("demo")

    assert second.exit_code == 0, second.output
    assert _counts() == before
    assert "already present (unchanged)" in second.stdout.splitlines()[0]
    accounts = second.stdout.split("demo accounts, each with the password")[1]
    people, device = accounts.split("demo device (no password")
    roles = {line.split()[1] for line in people.splitlines()[1:] if line.strip()}
    assert roles == {
        "coordinator", "therapist", "clinician", "pharmacist", "medical_monitor", "sponsor",
        "admin",
    }  # fmt: skip
    assert device.splitlines()[1].split() == ["tablet-s01", "device", "S01"]
