"""HTTP hardening: security headers, CORS closed by default, the body size limit, no secrets in
URLs or logs, settings that refuse unsafe values."""

import json
import logging
import re

import pytest
from fastapi.routing import APIRoute
from pydantic import ValidationError

from app.config import Settings
from app.main import create_app
from app.security import RedactSecrets, inline_script_hashes, redact
from tests.auth.accounts import client_of
from tests.vitals.readings import reading

HEALTH = "/api/v1/health"


def test_every_api_response_carries_the_security_headers(http_client):
    for response in (
        http_client.get(HEALTH),
        http_client.get("/api/v1/auth/me"),  # 401
        http_client.get("/api/v1/nothing-here"),  # 404
        http_client.post("/api/v1/auth/login", json={}),  # 422
    ):
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["content-security-policy"].startswith("default-src 'none'")
        assert headers["cache-control"] == "no-store"
        assert "strict-transport-security" not in headers  # plain http
        assert headers["x-request-id"]


def test_an_unexpected_error_carries_the_headers_too(db):
    application = create_app()

    @application.get("/api/v1/fails")
    def fails() -> None:
        raise RuntimeError("a bug")

    with client_of(application, db) as failing:
        response = failing.get("/api/v1/fails")
    assert response.status_code == 500
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


def test_hsts_only_over_https(application, db):
    with client_of(application, db, base_url="https://testserver") as secure:
        response = secure.get(HEALTH)
    assert response.headers["strict-transport-security"].startswith("max-age=")


@pytest.mark.parametrize("page_path", ["/docs", "/redoc"])
def test_the_docs_pages_load_everything_from_vigil_itself(http_client, page_path: str):
    """Offline, a page that needs a CDN is blank: every asset comes from the app, and the
    Content-Security-Policy names no other origin."""
    page = http_client.get(page_path)
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert not re.findall(r"https?:|//", csp), csp  # 'self', hashes, data: and blob: only
    script_src = re.search(r"script-src ([^;]+)", csp).group(1).split()
    assert "'unsafe-inline'" not in script_src
    # every inline script of the page (Swagger UI starts with one) is allowed by its hash
    hashes = inline_script_hashes(page.content)
    assert hashes or page_path == "/redoc"
    assert all(f"'{h}'" in script_src for h in hashes)
    assets = re.findall(r'<script src="([^"]+)"', page.text)
    assets += re.findall(r'<link[^>]+href="([^"]+)"', page.text)
    assert assets
    for url in assets:
        assert url.startswith("/"), url  # on Vigil's own origin
        asset = http_client.get(url)
        assert asset.status_code == 200, url
        assert asset.content
    assert "connect-src 'self'" in csp  # it fetches the OpenAPI document
    assert http_client.get("/api/v1/openapi.json").status_code == 200


def test_swagger_ui_fetches_no_validator_badge(http_client):
    assert '"validatorUrl": null' in http_client.get("/docs").text


@pytest.fixture
def small_limit_client(settings_env, db):
    settings_env(max_request_bytes=4096)
    with client_of(create_app(), db) as limited:
        yield limited


def test_an_oversized_body_is_refused_with_413(small_limit_client):
    big = {"username": "x", "password": "p" * 5000}
    declared = small_limit_client.post("/api/v1/auth/login", json=big)
    assert declared.status_code == 413
    assert declared.headers["content-type"] == "application/problem+json"
    assert "4096" in declared.json()["detail"]
    assert declared.headers["x-content-type-options"] == "nosniff"

    def chunks():  # no Content-Length: the body is streamed (chunked) and counted
        for _ in range(10):
            yield b" " * 1000

    streamed = small_limit_client.post(
        "/api/v1/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 413
    assert streamed.json()["type"].endswith("/request-too-large")

    def small():
        yield b'{"username": "x",'
        yield b' "password": "not the password"}'

    fine = small_limit_client.post(
        "/api/v1/auth/login", content=small(), headers={"Content-Type": "application/json"}
    )
    assert fine.status_code == 401  # read whole and handed on: an ordinary refused sign-in


def test_a_batch_of_1000_readings_fits_the_default_limit(http_client):
    batch = {"readings": [reading(minutes=i % 480) for i in range(1000)]}
    size = len(json.dumps(batch).encode())
    assert size < Settings().max_request_bytes / 2
    response = http_client.post(
        "/api/v1/dosing-sessions/0190c0de-0000-7000-8000-000000000000/vital-readings/batch",
        json=batch,
    )
    assert response.status_code != 413


def test_cors_is_closed_by_default(http_client):
    preflight = http_client.options(
        HEALTH,
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    simple = http_client.get(HEALTH, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


def test_cors_allows_only_the_listed_origins(settings_env, db):
    settings_env(cors_origins="https://monitor.example.org, https://other.example.org/")
    with client_of(create_app(), db) as cors_client:
        allowed = cors_client.options(
            HEALTH,
            headers={
                "Origin": "https://monitor.example.org",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "Authorization",
            },
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://monitor.example.org"
        assert "access-control-allow-credentials" not in allowed.headers
        refused = cors_client.options(
            HEALTH,
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in refused.headers
        assert refused.headers["x-frame-options"] == "DENY"


SECRET_NAMES = re.compile(r"token|password|secret|key|credential", re.IGNORECASE)


def test_no_route_takes_a_secret_in_its_url(application):
    """Access logs show URLs: no path or query parameter may carry a credential."""
    for route in application.routes:
        if not isinstance(route, APIRoute):
            continue
        params = route.dependant.path_params + route.dependant.query_params
        for dependency in route.dependant.dependencies:
            params += dependency.path_params + dependency.query_params
        for param in params:
            if param.name.endswith("_id"):
                continue  # ids of tokens are not secrets
            assert not SECRET_NAMES.search(param.name), f"{route.path} takes {param.name}"


def test_secrets_are_redacted_from_log_lines():
    token = "vgl_s_" + "A" * 43
    access = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", f"/api/v1/x?token={token}&password=hunter2", "1.1", 200),
        None,
    )
    assert RedactSecrets().filter(access)
    line = access.getMessage()
    assert token not in line and "hunter2" not in line
    assert "GET /api/v1/x?token=[redacted]&password=[redacted]" in line
    assert redact(f"Authorization: Bearer {token}") == "Authorization: Bearer [redacted]"
    assert redact(f"found {token} here") == "found [redacted] here"
    assert redact("GET /api/v1/participants?limit=5") == "GET /api/v1/participants?limit=5"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"environment": "production"}, "VIGIL_SECRET_KEY"),
        ({"cors_origins": "*"}, "wildcards are refused"),
        ({"login_lockout_minutes": "0"}, "VIGIL_LOGIN_LOCKOUT_MINUTES"),
        ({"api_token_ttl_days": "400"}, "VIGIL_API_TOKEN_TTL_DAYS"),
    ],
)
def test_settings_refuse_unsafe_values(monkeypatch, env, message):
    for key, value in env.items():
        monkeypatch.setenv(f"VIGIL_{key.upper()}", value)
    with pytest.raises(ValidationError, match=message):
        Settings()
