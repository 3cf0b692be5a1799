import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.audit.recorder import HardDeleteRefused, change_reason, insert_audited
from app.models import AuditRecord, Site
from tests.factories.trial import make_site, make_study


def _records(db, entity_id):
    stmt = select(AuditRecord).where(AuditRecord.entity_id == str(entity_id))
    return db.scalars(stmt.order_by(AuditRecord.id)).all()


def test_create_and_change_are_recorded_with_before_after_and_reason(db):
    study = make_study(db)
    site = make_site(db, study)
    db.commit()  # the records are chained and written as the transaction commits
    created = _records(db, site.id)
    assert [r.action for r in created] == ["create"]
    assert created[0].after["name"] == "Site S01"
    assert created[0].after["id"] == str(site.id)
    with change_reason(db, "site renamed by sponsor", "rename"):
        site.name = "Boulder"
    db.commit()
    records = _records(db, site.id)
    assert [r.action for r in records] == ["create", "rename"]
    assert records[1].before == {"name": "Site S01"}
    assert records[1].after == {"name": "Boulder"}
    assert records[1].reason == "site renamed by sponsor"


def test_hard_delete_of_trial_data_is_refused(db):
    study = make_study(db)
    site = make_site(db, study)
    db.delete(site)
    with pytest.raises(HardDeleteRefused):
        db.flush()
    db.rollback()


def test_audit_records_cannot_be_changed_through_the_orm(db):
    study = make_study(db)
    db.commit()
    record = _records(db, study.id)[0]
    record.reason = "rewritten"
    with pytest.raises(HardDeleteRefused):
        db.flush()
    db.rollback()


def test_the_records_of_undone_changes_are_undone_with_them(db):
    """A savepoint rolled back (a failed flush inside it included) takes its changes' records
    with it; one released keeps them; all are written when the transaction commits."""
    study = make_study(db)
    kept = make_site(db, study, "S01")
    with db.begin_nested():
        released = make_site(db, study, "S02")
    savepoint = db.begin_nested()
    undone = make_site(db, study, "S03")
    undone_id = undone.id
    savepoint.rollback()
    with pytest.raises(IntegrityError), db.begin_nested():
        db.add(Site(study_id=study.id, code="S01", name="Twice"))  # the same code: refused
        db.flush()
    db.commit()
    assert [r.action for r in _records(db, kept.id)] == ["create"]
    assert [r.action for r in _records(db, released.id)] == ["create"]
    assert _records(db, undone_id) == []
    codes = [
        r.after["code"]
        for r in db.scalars(select(AuditRecord).where(AuditRecord.entity_type == "sites"))
    ]
    assert sorted(codes) == ["S01", "S02"]


def test_rows_inserted_in_one_statement_are_audited_and_stay_in_the_session(db):
    """insert_audited writes the create records the flush would, and its rows are stored
    objects: a change made to one afterwards is written and audited too."""
    study = make_study(db)
    flushed = make_site(db, study, "S01")
    inserted = [Site(study_id=study.id, code=code, name=f"Site {code}") for code in ("S02", "S03")]
    insert_audited(db, inserted)
    with change_reason(db, "site renamed by sponsor", "rename"):
        inserted[0].name = "Boulder"
    db.commit()
    db.expire_all()
    assert db.get(Site, inserted[0].id).name == "Boulder"
    assert [r.action for r in _records(db, inserted[0].id)] == ["create", "rename"]
    (created,) = _records(db, inserted[1].id)
    assert created.after.keys() == _records(db, flushed.id)[0].after.keys()
    assert created.after["code"] == "S03"


def test_rows_inserted_in_a_savepoint_that_rolls_back_are_forgotten(db):
    """A savepoint that rolls back takes its inserted rows out of the session, as it does
    flushed ones: the same rows can be inserted again afterwards, and nothing is audited twice."""
    study = make_study(db)
    db.commit()
    site_id = uuid.uuid4()
    refused = Site(id=site_id, study_id=study.id, code="S02", name="Site S02")
    savepoint = db.begin_nested()
    insert_audited(db, [refused])
    savepoint.rollback()
    insert_audited(db, [Site(id=site_id, study_id=study.id, code="S02", name="Site S02")])
    db.commit()
    assert db.scalars(select(Site.code).where(Site.id == site_id)).all() == ["S02"]
    assert [r.action for r in _records(db, site_id)] == ["create"]
