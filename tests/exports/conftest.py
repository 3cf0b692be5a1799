from collections.abc import Iterator
from contextlib import nullcontext

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from app.exports.sdtm.endpoints import export_readers


@pytest.fixture
def export_api(db: Session, api: FastAPI) -> Iterator[FastAPI]:
    """Exports read their rows in the test's transaction (the request's has committed to it)."""
    api.dependency_overrides[export_readers] = lambda: lambda: nullcontext(db)
    yield api
