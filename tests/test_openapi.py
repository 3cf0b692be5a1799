"""The published OpenAPI document says what the API answers: every 405 names the methods its path
allows; every operation documents its problem responses as problem+json; the bearer scheme is
declared where credentials are needed; the constraints the code enforces are in the schema."""

import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from app.auth.passwords import MIN_PASSWORD_LENGTH
from app.config import get_settings
from app.main import create_app

APP = create_app()
DOCUMENT: dict[str, Any] = APP.openapi()
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _methods_by_path() -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for route in iter_route_contexts(APP.routes):
        if isinstance(route.original_route, APIRoute) and route.include_in_schema:
            found[route.path_format] |= route.methods
    return dict(found)


METHODS_BY_PATH = _methods_by_path()


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(APP) as test_client:  # a 405 is answered before any database is used
        yield test_client


@pytest.mark.parametrize("path", sorted(METHODS_BY_PATH))
def test_a_method_the_path_does_not_allow_gets_405_naming_those_it_does(client, path: str):
    allowed = METHODS_BY_PATH[path]
    url = path.format_map(defaultdict(lambda: str(uuid.uuid4())))
    for method in sorted(set(METHODS) - allowed):
        response = client.request(method, url)
        assert response.status_code == 405, (method, url)
        assert response.headers["content-type"] == "application/problem+json"
        assert set(response.headers["allow"].split(", ")) == allowed, (method, url)


def _operations() -> list[Any]:
    return [
        pytest.param(method.upper(), path, operation, id=f"{method.upper()} {path}")
        for path, operations in DOCUMENT["paths"].items()
        for method, operation in operations.items()
    ]


OPERATIONS = _operations()


def test_the_document_describes_every_route():
    assert len(OPERATIONS) == sum(len(methods) for methods in METHODS_BY_PATH.values())


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS)
def test_every_error_response_is_documented_as_a_problem(method, path, operation):
    responses = operation["responses"]
    expected = {"400", "413", "500", "503"}
    if operation.get("security"):
        expected |= {"401", "403"}
    if "{" in path or "requestBody" in operation:
        expected.add("404")
    if operation.get("parameters") or "requestBody" in operation:
        expected.add("422")
    assert expected <= set(responses), f"{method} {path} leaves out {expected - set(responses)}"
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for status, response in responses.items():
        if status[0] not in "45":
            continue
        if path.startswith("/api/v1/fhir"):  # OperationOutcomes, problems only from outside
            fhir = {"application/fhir+json": {}}
            outside = int(status) in (400, 413, 500, 503)
            expected_content = problem if status == "500" else fhir | (problem if outside else {})
            assert response["content"] == expected_content, f"{method} {path} {status}"
        else:
            assert response["content"] == problem, f"{method} {path} {status}"


def test_the_problem_schema_is_the_shape_every_error_has():
    schemas = DOCUMENT["components"]["schemas"]
    problem = schemas["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "instance"}
    assert {"errors", "request_id"} <= set(problem["properties"])
    assert "HTTPValidationError" not in schemas


def test_the_bearer_scheme_is_declared_on_every_route_that_needs_credentials():
    assert DOCUMENT["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A token from POST /auth/login, POST /auth/tokens or a device's",
    }
    operations = [param.values for param in OPERATIONS]
    public = {(m, p) for m, p, op in operations if "security" not in op}
    assert public == {
        ("POST", "/api/v1/auth/login"),
        ("GET", "/api/v1/health"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
    }
    for method, path, operation in operations:
        if (method, path) not in public:
            assert operation["security"] == [{"bearer": []}], f"{method} {path}"


def _schema(name: str) -> dict[str, Any]:
    return DOCUMENT["components"]["schemas"][name]


def test_the_password_length_is_declared():
    for name in ("UserCreate", "LoginRequest"):
        assert _schema(name)["properties"]["password"]["maxLength"] == 1024
    assert _schema("UserCreate")["properties"]["password"]["minLength"] == MIN_PASSWORD_LENGTH


def test_the_longest_token_lifetime_is_declared():
    (integer,) = [
        choice
        for choice in _schema("ApiTokenCreate")["properties"]["ttl_days"]["anyOf"]
        if choice.get("type") == "integer"
    ]
    assert integer["minimum"] == 1
    assert integer["maximum"] == get_settings().api_token_max_ttl_days


def test_a_site_time_zone_is_one_of_the_iana_zones():
    zones = _schema("SiteCreate")["properties"]["timezone"]["enum"]
    assert {"UTC", "America/Denver", "Europe/London"} <= set(zones)
    assert "Mars/Olympus" not in zones
