import pytest
from sqlalchemy import select

from app.audit.recorder import HardDeleteRefused, change_reason
from app.models import AuditRecord
from tests.factories.trial import make_site, make_study


def _records(db, entity_id):
    stmt = select(AuditRecord).where(AuditRecord.entity_id == str(entity_id))
    return db.scalars(stmt.order_by(AuditRecord.id)).all()


def test_create_and_change_are_recorded_with_before_after_and_reason(db):
    study = make_study(db)
    site = make_site(db, study)
    created = _records(db, site.id)
    assert [r.action for r in created] == ["create"]
    assert created[0].after["name"] == "Site S01"
    assert created[0].after["id"] == str(site.id)
    with change_reason(db, "site renamed by sponsor", "rename"):
        site.name = "Boulder"
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
    record = _records(db, study.id)[0]
    record.reason = "rewritten"
    with pytest.raises(HardDeleteRefused):
        db.flush()
    db.rollback()
