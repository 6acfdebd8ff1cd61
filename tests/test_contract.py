"""The OpenAPI document is the contract: schemathesis fuzzes every operation in-process.

On both databases, authenticated as an organisation's admin (both headers on every call):
no 5xx, and every response is documented (status code, content type, body schema). Plain
tests then read the document itself: problem+json errors, enums, docs page, health.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis.internal import lambda_sources
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from interventions.app import create_app
from interventions.config import Settings
from tests.factories import PASSWORD, Factory, Member, Org


def _describe_lambdas_tolerantly() -> None:
    """Work around CPython 3.11's gh-106905 while schemathesis builds its tests.

    Hypothesis describes filter lambdas by parsing their source file with ``ast``; on
    CPython 3.11.7 that parse can fail at random with ``SystemError: AST constructor
    recursion depth mismatch`` (fixed upstream). The description only names a strategy in
    reprs, so a generic one is harmless; nothing that is generated or checked changes.
    """
    original = lambda_sources._lambda_description

    def tolerant(f: Any, *args: Any, **kwargs: Any) -> str:
        try:
            return str(original(f, *args, **kwargs))
        except SystemError:
            return "lambda: <source unavailable>"

    lambda_sources._lambda_description = tolerant


_describe_lambdas_tolerantly()

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
LOGIN = "/auth/v1/rs/login/credentials"
LOGOUT = "/auth/v1/rs/logout"
PROBLEM_JSON = "application/problem+json"
MAX_EXAMPLES = 25  # fuzzed cases per operation (plus the coverage phase): about a minute in all
SPARE_SESSIONS = 60


def _document_app() -> Any:
    """An app that only serves its document (its database is never touched)."""
    return create_app(Settings(database_url="sqlite://", secret_key="contract-" + "x" * 32))


# Loaded once, in-process, from the served /openapi.json; each test calls its own app (one
# pytest item per operation and database). ``schemathesis.pytest.from_fixture`` would build the
# app from fixtures directly, but its runner does not work with pytest 9 (``Function._nodeid``).
schema = schemathesis.openapi.from_asgi("/openapi.json", _document_app())


@dataclass
class Caller:
    """The admin whose headers go with every call, and spare sessions of the same admin for
    logout, which revokes the session it is called with."""

    admin: Member
    spare_sessions: list[dict[str, str]]


@pytest.fixture
async def contract_caller(factory: Factory) -> Caller:
    org: Org = await factory.org()
    async with factory.db.writer() as s, s.begin():
        spares = [await factory._login(s, org.admin, org.id) for _ in range(SPARE_SESSIONS)]
    return Caller(admin=org.admin, spare_sessions=spares)


@pytest.fixture
def contract_app(settings: Settings, contract_caller: Caller) -> Iterator[Any]:
    # A fresh app: schemathesis runs it on its own event loop thread, where its engine lives.
    app = create_app(settings)
    yield app
    asgi.shutdown_lifespans()  # disposes the engine on the loop that created it


def _logout_session(case: Any, app: Any, caller: Caller) -> dict[str, str]:
    """A session of the admin's that logout may revoke; opened by login when none is left."""
    if caller.spare_sessions:
        return caller.spare_sessions.pop()
    login = case.operation.schema[LOGIN]["POST"]
    response = login.Case(
        body={"email": caller.admin.email, "password": PASSWORD}, media_type="application/json"
    ).call(app=app)
    assert response.status_code == 201, response.text
    tokens = response.json()["data"]
    return {
        "Authorization": f"Bearer {tokens['accessToken']}",
        "x-session-token": tokens["sessionToken"],
    }


@schema.parametrize()
@hypothesis_settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_conforms(case: Any, contract_app: Any, contract_caller: Caller) -> None:
    """No 5xx, and status code, content type and body as documented, for every operation."""
    headers = dict(contract_caller.admin.headers)
    if case.path == LOGOUT:
        headers = _logout_session(case, contract_app, contract_caller)
    case.call_and_validate(headers=headers, checks=CHECKS, app=contract_app)


# --- the document itself --------------------------------------------------------------------


async def _document(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    document: dict[str, Any] = r.json()
    return document


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield method.upper(), path, operation


async def test_every_error_response_is_problem_json(client: httpx.AsyncClient) -> None:
    document = await _document(client)
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail"} <= set(problem["required"])
    assert "errors" in problem["properties"]
    seen = 0
    for method, path, operation in _operations(document):
        label = f"{method} {path}"
        responses = operation["responses"]
        errors = {code: r for code, r in responses.items() if code[0] in "45"}
        assert errors, f"{label} documents no error response"
        for code, response in errors.items():
            content = response.get("content", {})
            assert set(content) == {PROBLEM_JSON}, f"{label} {code}: {sorted(content)}"
            assert content[PROBLEM_JSON]["schema"] == {"$ref": "#/components/schemas/Problem"}
            assert response.get("description"), f"{label} {code} has no description"
            seen += 1
        if operation.get("security"):
            assert "401" in responses, f"{label}: authenticated but no 401"
        if "requestBody" in operation:
            assert {"400", "413"} <= responses.keys(), f"{label}: body but no 400/413"
            if "application/json" in operation["requestBody"]["content"]:
                assert "415" in responses, f"{label}: JSON body but no 415"
        if any(p["in"] == "path" for p in operation.get("parameters", [])):
            assert {"400", "404"} <= responses.keys(), f"{label}: path id but no 400/404"
        # FastAPI's default validation error shape must not leak into the document.
        assert "HTTPValidationError" not in str(responses), label
    assert seen > 30
    assert "HTTPValidationError" not in document["components"]["schemas"]


async def test_authenticated_operations_require_both_headers(client: httpx.AsyncClient) -> None:
    """SPEC §3: both headers on every call. In OpenAPI, schemes listed in one requirement object
    are all required; separate objects are alternatives."""
    document = await _document(client)
    schemes = document["components"]["securitySchemes"]
    bearer = [n for n, s in schemes.items() if s["type"] == "http" and s["scheme"] == "bearer"]
    session = [
        n
        for n, s in schemes.items()
        if s["type"] == "apiKey" and s["in"] == "header" and s["name"].lower() == "x-session-token"
    ]
    assert len(bearer) == 1
    assert len(session) == 1
    public = {
        ("POST", LOGIN),
        ("POST", "/auth/v1/rs/refresh"),
        ("GET", "/health"),
        ("PUT", "/storage/v1/uploads/{file_id}"),
    }
    for method, path, operation in _operations(document):
        if (method, path) in public:
            continue
        assert operation.get("security") == [{bearer[0]: [], session[0]: []}], (
            f"{method} {path}: security {operation.get('security')}"
        )


ENUMS = {
    "status": [
        "toSchedule",
        "scheduled",
        "inProgress",
        "toVerify",
        "validated",
        "rejected",
        "cancelled",
    ],
    "type": ["preventive", "curative", "training exercise"],
    "creationStatus": ["toScheduled", "scheduled", "done"],
    "decision": ["accept", "reject"],
    "checkType": ["planned", "unplanned"],
}
ENUM_START = {"status": 1, "type": 1, "creationStatus": 0, "decision": 1, "checkType": 1}


def _described(fragment: Any, labels: list[str], first: int) -> bool:
    text = str(fragment)
    return all(
        re.search(rf"\b{first + n}\W{{1,5}}{re.escape(label)}\b", text)
        for n, label in enumerate(labels)
    )


async def test_enums_are_described(client: httpx.AsyncClient) -> None:
    document = await _document(client)
    schemas = document["components"]["schemas"]
    where: dict[str, list[str]] = {name: [] for name in ENUMS}
    # The intervention's own enums; other resources (anomalies, rules, companies…) have a
    # ``status`` or ``type`` of their own, with other values.
    intervention_models = {
        "InterventionRead",
        "InterventionDetail",
        "CurativeCreate",
        "UnplannedCreate",
        "PreventiveUpdate",
        "TrainingUpdate",
        "TrainingCreate",
        "RoutineInterventionCreate",
        "VerifyRequest",
    }
    for model, definition in schemas.items():
        if model not in intervention_models:
            continue
        for prop, fragment in definition.get("properties", {}).items():
            if prop in ENUMS:
                assert _described(fragment, ENUMS[prop], ENUM_START[prop]), (
                    f"{model}.{prop} does not describe its values: {fragment}"
                )
                where[prop].append(model)
    intervention = schemas["InterventionRead"]["properties"]
    for prop in ("status", "type", "creationStatus", "checkType"):
        assert prop in intervention
        assert prop in where
        assert "InterventionRead" in where[prop]
    assert where["decision"] == ["VerifyRequest"]
    assert schemas["VerifyRequest"]["properties"]["decision"]["enum"] == [1, 2]
    for model in ("CurativeCreate", "RoutineInterventionCreate", "TrainingCreate"):
        assert schemas[model]["properties"]["creationStatus"]["enum"] == [0, 1, 2]
    # The overview repeats every enum for the reader of /docs.
    overview = document["info"]["description"]
    for prop, labels in ENUMS.items():
        assert _described(overview, labels, ENUM_START[prop]), prop


async def test_every_endpoint_is_documented(client: httpx.AsyncClient) -> None:
    document = await _document(client)
    documented = {(m, p) for m, p, _ in _operations(document)}
    for wanted in [
        ("POST", LOGIN),
        ("POST", "/interventions/v2/rs/curative"),
        ("POST", "/interventions/v2/mb/preventive/unplanned"),
        ("PATCH", "/interventions/v2/rs/preventive/{interventionId}"),
        ("PATCH", "/interventions/v2/rs/training-exercise/{interventionId}"),
        ("PATCH", "/interventions/v2/rs/{interventionId}/verify"),
        ("GET", "/interventions/v2/rs/{interventionId}"),
        ("POST", "/interventions/v2/rs/preventive/routine"),
        ("POST", "/interventions/v2/rs/training-exercise"),
        ("GET", "/notifications/v1/rs"),
        ("GET", "/health"),
    ]:
        assert wanted in documented, wanted
    for method, path, operation in _operations(document):
        assert operation.get("summary"), f"{method} {path} has no summary"


async def test_docs_page_is_html(client: httpx.AsyncClient) -> None:
    r = await client.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "<html" in r.text.lower()
    assert "/openapi.json" in r.text


async def test_health_is_200(client: httpx.AsyncClient) -> None:
    r = await client.get("/health")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert isinstance(r.json(), dict)
