"""The published OpenAPI document (/api/v1/openapi.json), made to say what the API answers.

FastAPI documents each route's success and a 422 of its own shape. Vigil answers every error as
an RFC 9457 problem (app/errors.py), so the document is completed here, once for all routes:
- every problem status a route can give, under ``application/problem+json`` with the Problem
  schema: the statuses every request can meet (400, 413, 500, 503), 401 and 403 where the
  route's declared permission needs credentials, 404 where the path or the body names a record
  (a body names sites, users, protocols), 409 on
  writes, 422 where there is input to refuse (replacing FastAPI's ``HTTPValidationError``);
  a route's own ``responses=`` keep their descriptions, and an error format of their own (the
  FHIR input routes answer OperationOutcomes) beside problem+json where a problem can still
  come from outside the route;
- the bearer scheme, on every route whose permission is not PUBLIC;
- the optional ``Idempotency-Key`` header on every write that takes one (app/idempotency.py),
  and the ``Idempotent-Replayed`` header of a replayed answer;
- constraints that configuration sets (the longest API token lifetime).
"""

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from app.auth.deps import Policy
from app.config import Settings
from app.errors import PROBLEM_JSON, Problem
from app.idempotency import KEY_PATTERN as KEY_RE
from app.idempotency import KEYED_METHODS, REPLAYED
from app.permissions import Permission
from app.schemas import ShownOnce

BEARER = "bearer"
PROBLEM_REF = "#/components/schemas/Problem"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PROBLEMS: dict[int, str] = {
    400: "The request is malformed (e.g. its Content-Length is not a number)",
    401: "No credentials, or the token is unknown, expired or revoked: sign in again",
    403: "The caller's role or sites do not allow this, or a cookie-authenticated change lacks "
    "the header X-Vigil-CSRF: 1",
    404: "No such record, or none the caller may see",
    409: "The request conflicts with the record's state; nothing was changed",
    413: "The request body is larger than VIGIL_MAX_REQUEST_BYTES",
    422: "Invalid input: `errors` names each field and what is wrong with it",
    500: "Vigil failed to handle the request; nothing was saved. Quote `request_id` to report it",
    503: "The database is unavailable or busy; nothing was recorded: send the request again",
}
EVERY_REQUEST = (400, 413, 500, 503)
KEY_PATTERN = f"^{KEY_RE.pattern}$"
IDEMPOTENCY_KEY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Any unique string (a UUID will do) that makes a retry of this write safe: the same "
        "request sent again with the same key, by the same caller, gets the first answer "
        "(marked Idempotent-Replayed: true) instead of being done again, for "
        "VIGIL_IDEMPOTENCY_KEEP_HOURS (24 h by default). The same key with another request: "
        "422; while the first is still being handled: 409 with Retry-After. A 5xx is not "
        "kept (the key may be used again); a 4xx is. See docs/api.md."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": KEY_PATTERN},
}
# the refusals a route gives once the caller's key is taken, kept and replayed like a success
REPLAYABLE_REFUSALS = frozenset({"404", "409", "422"})
REPLAYED_HEADER = {
    "description": "true when this is the kept answer to an earlier request with the same "
    "Idempotency-Key",
    "schema": {"type": "string", "enum": ["true"]},
}


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Make ``app.openapi()`` (and so /api/v1/openapi.json) return the completed document."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            complete(generate(), app, settings)  # generate() keeps it as app.openapi_schema
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def complete(document: dict[str, Any], app: FastAPI, settings: Settings) -> None:
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    components["securitySchemes"] = {
        BEARER: {
            "type": "http",
            "scheme": "bearer",
            "description": "A token from POST /auth/login, POST /auth/tokens or a device's",
        }
    }
    for path, method, permission, route in _operations(app):
        operation = document["paths"][path][method.lower()]
        if permission is not Permission.PUBLIC:
            operation["security"] = [{BEARER: []}]
        responses = operation.setdefault("responses", {})
        if responses.get("422", {}).get("description") == "Validation Error":  # FastAPI's
            responses["422"]["description"] = PROBLEMS[422]
        names_records = "{" in path or "requestBody" in operation
        keyed = _takes_idempotency_key(route, method, permission)
        has_input = "422" in responses or keyed  # a key used for another request: 422
        for status in _statuses(method, permission, names_records, has_input=has_input):
            responses.setdefault(str(status), {"description": PROBLEMS[status]})
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                response["content"] = _error_content(int(status), response.get("content", {}))
        if keyed:
            operation.setdefault("parameters", []).append(IDEMPOTENCY_KEY_PARAMETER)
            for status, response in responses.items():
                if status.startswith("2") or status in REPLAYABLE_REFUSALS:
                    response.setdefault("headers", {})[REPLAYED] = REPLAYED_HEADER
        operation["responses"] = dict(sorted(responses.items()))
    ttl_days = schemas["ApiTokenCreate"]["properties"]["ttl_days"]
    for choice in ttl_days["anyOf"]:
        if choice.get("type") == "integer":
            choice["maximum"] = settings.api_token_max_ttl_days


def _error_content(status: int, declared: dict[str, Any]) -> dict[str, Any]:
    """problem+json, unless the route declares an error format of its own (the FHIR routes'
    OperationOutcome); even then the statuses any request can meet before it reaches a route
    (a malformed request, too large a body, a failure, an outage) may come as problems."""
    own = {media: schema for media, schema in declared.items() if media != "application/json"}
    problem = {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}
    if not own:
        return problem
    return own | problem if status in EVERY_REQUEST else own


def _statuses(
    method: str, permission: Permission, names_records: bool, *, has_input: bool
) -> list[int]:
    statuses = list(EVERY_REQUEST)
    if permission is not Permission.PUBLIC:
        statuses += [401, 403]
    if names_records:
        statuses.append(404)
    if method not in SAFE_METHODS:
        statuses.append(409)
    if has_input:
        statuses.append(422)
    return sorted(statuses)


def _takes_idempotency_key(route: APIRoute, method: str, permission: Permission) -> bool:
    """A keyed write with a caller, whose answer shows no secret (app/idempotency.py)."""
    if method not in KEYED_METHODS or permission is Permission.PUBLIC:
        return False
    model = route.response_model
    return not (isinstance(model, type) and issubclass(model, ShownOnce))


def _operations(app: FastAPI) -> Iterator[tuple[str, str, Permission, APIRoute]]:
    """Each documented operation's path, method, declared permission and route."""
    for route in iter_route_contexts(app.routes):
        original = route.original_route
        if not isinstance(original, APIRoute) or not original.include_in_schema:
            continue
        (permission,) = (
            d.dependency.permission for d in route.dependencies if isinstance(d.dependency, Policy)
        )
        path, methods = route.path_format, route.methods
        assert path is not None and methods is not None  # an APIRoute has both
        for method in methods:
            yield path, method, permission, original
