"""`vigil audit export` and `vigil audit verify --file` on committed databases, and the 30-line
verifier of docs/audit-trail.md run as an auditor would, on the same files; the cut-over from
chain version 1 to 2; the ODM rendering validated against the ODM 1.3.2 schema."""

import json
import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import xmlschema
from typer.testing import CliRunner, Result

from app import migrations
from app.audit.chain import GENESIS_HASH, link
from app.audit.verify import verify_database
from app.cli import cli
from app.db import make_engine
from app.ids import new_id
from tests.audit.test_tamper import write_trial_data
from tests.audit.test_verify_cli import head_of, use_database  # noqa: F401 - a fixture

BACKENDS = ["sqlite", "postgresql"]
DOCS = Path(__file__).parents[2] / "docs" / "audit-trail.md"
ODM_XSD = files("odmlib") / "schemas" / "odm" / "1.3.2" / "ODM1-3-2.xsd"


def vigil(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def docs_verifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    text = DOCS.read_text()
    match = re.search(r"<!-- verifier -->\n```python\n(.*?)```", text, re.S)
    assert match, "docs/audit-trail.md lost its verifier script"
    script = match.group(1)
    assert len(script.splitlines()) <= 30
    path = tmp_path_factory.mktemp("auditor") / "verify_vigil_audit.py"
    path.write_text(script)
    return path


def auditor(script: Path, export: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", str(script), str(export)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(params=BACKENDS)
def trail(request, fresh_database_url, use_database) -> str:  # noqa: F811
    url = fresh_database_url(request.param)
    migrations.upgrade(url)
    engine = make_engine(url)
    try:
        write_trial_data(engine)
    finally:
        engine.dispose()
    return use_database(url)


def exported(tmp_path: Path, *options: str) -> Path:
    out = tmp_path / "audit-trail.ndjson"
    result = vigil("audit", "export", "--out", str(out), *options)
    assert result.exit_code == 0, result.output
    return out


def test_an_export_verifies_with_the_cli_and_with_the_auditors_script(
    trail, tmp_path, docs_verifier
):
    out = exported(tmp_path)

    checked = vigil("audit", "verify", "--file", str(out))
    by_hand = auditor(docs_verifier, out)

    sequence, record_hash = head_of(trail)
    assert checked.exit_code == 0, checked.output
    assert f"#{sequence} sha256:{record_hash}" in checked.output
    assert "withheld (verified by commitment)" in checked.output  # the client addresses
    assert by_hand.returncode == 0, by_hand.stderr
    assert (
        by_hand.stdout.strip()
        == f"intact: {sequence} records, head #{sequence} sha256:{record_hash}"
    )
    assert "10.0.0.7" not in out.read_text()


def _tamper(path: Path, sequence: int, **changes: Any) -> None:
    lines = path.read_text().splitlines(keepends=True)
    for n, line in enumerate(lines[1:], start=1):
        record = json.loads(line)
        if record.get("sequence") == sequence:
            record.update(changes)
            lines[n] = json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"
    path.write_text("".join(lines))


def test_a_tampered_export_is_named_by_both_verifiers(trail, tmp_path, docs_verifier):
    out = exported(tmp_path)
    _tamper(out, 3, actor="admin:mallory")

    checked = vigil("audit", "verify", "--file", str(out))
    by_hand = auditor(docs_verifier, out)

    assert checked.exit_code == 1
    assert "BROKEN" in checked.output and "audit record #3" in checked.output
    assert "2 records verified before it" in checked.output
    assert by_hand.returncode == 1
    assert "BROKEN at audit record #3" in by_hand.stderr


def test_revealed_values_carry_their_salts_and_verify(trail, tmp_path, docs_verifier):
    out = exported(tmp_path, "--reveal", "client_address", "--reveal", "arms")

    assert "10.0.0.7" in out.read_text()
    assert vigil("audit", "verify", "--file", str(out)).exit_code == 0
    assert auditor(docs_verifier, out).returncode == 0
    # a revealed value changed no longer matches its commitment
    _tamper(out, 2, client_address="10.0.0.8")
    assert "BROKEN at audit record #2" in auditor(docs_verifier, out).stderr


def test_the_cli_refuses_an_unknown_kind_to_reveal(trail, tmp_path):
    result = vigil("audit", "export", "--out", str(tmp_path / "x"), "--reveal", "passwords")
    assert result.exit_code == 2
    assert "reveal one of arms, note_text, client_address" in result.output


# --- the cut-over from chain version 1 ----------------------------------------------------------

AS_0011_WROTE = sa.Table(  # audit_records before migration 0012
    "audit_records",
    sa.MetaData(),
    sa.Column("id", sa.Uuid()),
    sa.Column("sequence", sa.BigInteger()),
    sa.Column("previous_hash", sa.String()),
    sa.Column("record_hash", sa.String()),
    sa.Column("occurred_at", sa.DateTime(timezone=True)),
    *(sa.Column(n, sa.String()) for n in ("actor", "action", "entity_type", "entity_id")),
    *(sa.Column(n, sa.String()) for n in ("reason", "request_id", "client_address")),
    sa.Column("before", sa.JSON()),
    sa.Column("after", sa.JSON()),
)


@pytest.fixture(params=BACKENDS)
def cut_over_trail(request, fresh_database_url, use_database) -> str:  # noqa: F811
    """Three records chained in version 1 before migration 0012 (one holding an arm), then the
    trial data written by this version, in version 2."""
    url = fresh_database_url(request.param)
    migrations.upgrade(url, "0011")
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            previous = (
                connection.execute(
                    sa.select(AS_0011_WROTE.c.record_hash).order_by(AS_0011_WROTE.c.sequence.desc())
                ).scalar()
                or GENESIS_HASH
            )
            start = connection.execute(
                sa.select(sa.func.count()).select_from(AS_0011_WROTE)
            ).scalar()
            for n in range(1, 4):
                record = _old_record(n)
                previous = link(record, start + n, previous, version=1)
                values = {c.name: getattr(record, c.name) for c in AS_0011_WROTE.columns}
                connection.execute(sa.insert(AS_0011_WROTE).values(values))
        migrations.upgrade(url)
        write_trial_data(engine)
    finally:
        engine.dispose()
    return use_database(url)


def _old_record(n: int) -> Any:
    from datetime import UTC, datetime
    from types import SimpleNamespace

    return SimpleNamespace(
        id=new_id(),
        occurred_at=datetime(2026, 11, 30, 9, n, tzinfo=UTC),
        actor="coordinator:ann",
        action="update",
        entity_type="participants",
        entity_id=f"p-{n}",
        before={"status": "enrolled"},
        after={"status": "randomised", "arm_code": "MDMA"} if n == 2 else {"status": "randomised"},
        reason=None,
        request_id=f"req-old-{n}",
        client_address=None,
    )


def test_records_before_the_cut_over_verify_in_version_1(cut_over_trail, tmp_path, docs_verifier):
    assert verify_database(cut_over_trail).intact

    withheld = exported(tmp_path)
    checked = vigil("audit", "verify", "--file", str(withheld))
    assert checked.exit_code == 0, checked.output
    # the old record with an arm cannot be checked without it, and says so
    assert "1 records from before the chain-2 cut-over have values withheld" in checked.output
    lines = [json.loads(line) for line in withheld.read_text().splitlines()[1:]]
    records = [line for line in lines if line["type"] == "record"]
    versions = [record["chain_version"] for record in records]
    assert versions == sorted(versions) and versions[0] == 1 and versions[-1] == 2
    [old] = [record for record in records if record["unverifiable"]]
    assert old["chain_version"] == 1 and "arm_code" not in old["after"]

    revealed = exported(tmp_path, "--reveal", "arms", "--reveal", "client_address")
    checked = vigil("audit", "verify", "--file", str(revealed))
    assert checked.exit_code == 0 and "cut-over" not in checked.output
    assert auditor(docs_verifier, revealed).returncode == 0


# --- ODM 1.3.2 ------------------------------------------------------------------------------------


def test_the_odm_rendering_validates_against_the_odm_schema(trail, tmp_path):
    out = tmp_path / "audit-trail.odm.xml"
    result = vigil("audit", "export", "--odm", "--out", str(out))
    assert result.exit_code == 0, result.output

    schema = xmlschema.XMLSchema(str(ODM_XSD))
    schema.validate(str(out))

    document = schema.to_dict(str(out))
    records = document["ClinicalData"][0]["AuditRecords"][0]["AuditRecord"]
    sequence, record_hash = head_of(trail)
    assert len(records) == sequence
    assert records[-1]["@ID"] == f"AR.{sequence}"
    assert f"record sha256:{record_hash}" in records[-1]["SourceID"]
    users = {user["@OID"] for user in document["AdminData"][0]["User"]}
    assert {f"USR.{r['UserRef']['@UserOID'][4:]}" for r in records} <= users
    assert "10.0.0.7" not in out.read_text()
