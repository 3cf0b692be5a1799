"""The FHIR export reads its rows on a session of its own; here it reads the test's transaction."""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.exports.fhir.endpoints import export_reader

RESOURCE_TYPES = ["ResearchStudy", "ResearchSubject", "Patient", "Observation", "AdverseEvent"]


@pytest.fixture
def reader_on_the_test_transaction(db: Session, api: FastAPI) -> Iterator[None]:
    def reader() -> Iterator[Session]:
        yield db

    api.dependency_overrides[export_reader] = reader
    yield


def pull(client: TestClient, resource_type: str, study: str = "MAPP-T") -> list[dict[str, Any]]:
    """The resources of one bulk file, each line parsed on its own."""
    response = client.get(f"/api/v1/exports/fhir/{resource_type}.ndjson", params={"study": study})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/fhir+ndjson"
    lines = response.text.splitlines()
    assert response.text == "" or response.text.endswith("\n")
    return [json.loads(line) for line in lines]


def pull_text(client: TestClient, study: str = "MAPP-T") -> str:
    """Every bulk file of a study, concatenated."""
    texts = []
    for resource_type in RESOURCE_TYPES:
        response = client.get(
            f"/api/v1/exports/fhir/{resource_type}.ndjson", params={"study": study}
        )
        assert response.status_code == 200, response.text
        texts.append(response.text)
    return "".join(texts)
