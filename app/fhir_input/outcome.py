"""FHIR's way of saying what went wrong: an OperationOutcome (application/fhir+json), the one
error format of the FHIR input routes (every other route answers problem+json).

Issue codes are FHIR R4's IssueType (hl7.org/fhir/R4/valueset-issue-type.html); the HTTP
status follows the RESTful API page (http.html): 400 for a body that is not a well-formed
resource, 422 for a resource Vigil will not store (a value no person can have, a code that is
no vital sign), 409 for a reading id already used by other content, 404 for a dosing session
the caller cannot see, 401/403 for the caller.
"""

from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse

from app.errors import BEARER_CHALLENGE, VigilError

FHIR_JSON = "application/fhir+json"

# Vigil's error statuses -> the FHIR IssueType that says the same
ISSUE_OF_STATUS = {
    400: "structure",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    429: "throttled",
    503: "transient",
}


@dataclass(frozen=True)
class Issue:
    code: str  # FHIR IssueType
    diagnostics: str
    expression: str | None = None  # FHIRPath of the element at fault

    def as_json(self) -> dict[str, Any]:
        issue: dict[str, Any] = {"severity": "error", "code": self.code}
        issue["diagnostics"] = self.diagnostics
        if self.expression:
            issue["expression"] = [self.expression]
        return issue


class FhirRefusal(Exception):
    """A request (or one Bundle entry) refused, with every issue found."""

    def __init__(
        self, status_code: int, issues: list[Issue], retry_after_seconds: int | None = None
    ) -> None:
        super().__init__("; ".join(issue.diagnostics for issue in issues))
        self.status_code = status_code
        self.issues = issues
        self.retry_after_seconds = retry_after_seconds


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [issue.as_json() for issue in issues]}


def refusal_of(error: VigilError, expressions: dict[str, str] | None = None) -> FhirRefusal:
    """A Vigil error as FHIR issues: one per refused field, each at its FHIRPath when
    ``expressions`` maps the field's leading part (``observations.0``, ``measured_at``)."""
    code = ISSUE_OF_STATUS.get(error.status_code, "processing")
    if error.status_code == 422:
        code = "value" if error.errors else "business-rule"
    issues = []
    for problem in error.errors or [{"field": None, "message": error.detail}]:
        name = str(problem.get("field") or "")
        where = next(
            (path for prefix, path in (expressions or {}).items() if name.startswith(prefix)),
            None,
        )
        issues.append(Issue(code, str(problem["message"]), where))
    return FhirRefusal(error.status_code, issues, error.retry_after_seconds)


class FhirJSONResponse(JSONResponse):
    media_type = FHIR_JSON


def outcome_response(refusal: FhirRefusal) -> JSONResponse:
    response = FhirJSONResponse(operation_outcome(refusal.issues), status_code=refusal.status_code)
    if refusal.status_code == 401:
        response.headers["WWW-Authenticate"] = BEARER_CHALLENGE
    if refusal.retry_after_seconds is not None:
        response.headers["Retry-After"] = str(refusal.retry_after_seconds)
    return response
