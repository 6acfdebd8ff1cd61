"""The OpenAPI document is the contract: schemathesis fuzzes every operation over real HTTP.

On both databases, authenticated as an organisation's admin (both headers on every call), the
application served by uvicorn on a free port answers every generated request as the document
says, under **every** schemathesis check (``checks=all``): no 5xx; status code, content type,
headers and body as documented; schema-valid data accepted and schema-invalid data rejected;
405 with ``Allow`` for undocumented methods; authentication enforced. Plain tests then read the
document itself: problem+json errors, enums, operation ids, docs page, health, 405s.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.routing import iter_route_contexts
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis.internal import lambda_sources
from jsonschema import Draft202012Validator
from pydantic import TypeAdapter, ValidationError
from schemathesis.checks import CHECKS, is_check_class, load_all_checks
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.core.parameters import ParameterLocation
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from interventions.app import create_app
from interventions.config import Settings
from interventions.references import recurrence
from interventions.wire import DateTimeIn
from tests.factories import PASSWORD, Factory, Member, Org
from tests.helpers import LOGIN, LOGOUT, PROBLEM_JSON
from tests.live_server import LiveServer


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

MAX_EXAMPLES = 25  # fuzzed cases per operation, plus coverage: ~1.5 min for both databases
SPARE_SESSIONS = 60


def _errors(response: Any) -> list[dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return errors if isinstance(errors, list) else []


def _at(body: Any, field: str) -> Any:
    """The value at an error's JSON path (``provider.email``, ``siteIds[2]``) in ``body``."""
    value = body
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", field):
        try:
            value = value[int(index)] if index else value[name]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def _exempt_rejection(response: Any, case: Any) -> bool:
    """Refusals of schema-valid data that no document can rule out, each narrowly:

    - 422 whose every error is an unknown referenced id (``Unknown site: [7].``): random ids in
      an otherwise valid body; the document types ids, it cannot know which exist;
    - 404 for the resource the operation acts on, named in its path or, on site
      (``/interventions/v2/mb/check-in``, ``/execute``), by ``interventionId`` in its body;
    - 412 to a request with ``If-Match``: a precondition on the intervention's current version,
      which no document can know;
    - 422 whose every error is on ``Idempotency-Key``: the key was used before with another
      request (fuzzing reuses keys; a key names one request);
    - 422 on a webhook's ``url`` alone: a host that does not resolve, or resolves to a
      loopback or private address; the document cannot know what DNS answers;
    - 400 whose every error is an integer spelled with a fraction (``1.0``): SPEC §2 refuses it,
      and JSON Schema 2020-12 (OpenAPI 3.1) cannot say so, ``1.0`` being an integer there.
    """
    status, errors = response.status_code, _errors(response)
    headers = {name.lower() for name in case.headers or {}}
    if status == 412:
        return "if-match" in headers
    if (
        status == 422
        and "idempotency-key" in headers
        and errors
        and all(e.get("field") == "Idempotency-Key" for e in errors)
    ):
        return True
    if status == 422 and "/webhooks" in case.operation.path:
        # A receiver's URL that does not resolve, or resolves to a refused address: the
        # document cannot know what DNS answers.
        return bool(errors) and all(e.get("field") == "url" for e in errors)
    if status == 422:
        return bool(errors) and all(str(e.get("message")).startswith("Unknown ") for e in errors)
    if status == 404:
        body = case.body if isinstance(case.body, dict) else {}
        return "{" in case.operation.path or "interventionId" in body
    if status == 400:
        return bool(errors) and all(
            e.get("message") == "Input should be a valid integer."
            and isinstance(value := _at(case.body, str(e.get("field"))), float)
            and value.is_integer()
            for e in errors
        )
    return False


def positive_data_acceptance_narrowed(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis' ``positive_data_acceptance`` (schema-valid data is accepted: 2xx, or
    401/403/409/429, which no document can rule out), with the exceptions above only. Its
    default also lets every 404 pass; here a 404 must be one of the above too."""
    try:
        positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        if _exempt_rejection(response, case):
            return None
        raise
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if positive and response.status_code == 404 and not _exempt_rejection(response, case):
        raise RejectedPositiveData(
            operation=case.operation.label,
            message="Valid data should have been accepted: 404 without an unknown target id",
            status_code=response.status_code,
            allowed_statuses=["2xx", "3xx", "401", "403", "409", "429"],
        )
    return None


def _types(schema: dict[str, Any]) -> set[str]:
    kind = schema.get("type")
    types = set(kind) if isinstance(kind, list) else {kind} if kind else set()
    for branch in schema.get("anyOf", []):
        types |= _types(branch)
    return types


def _from_wire(value: Any, schema: dict[str, Any]) -> Any:
    """A query value as the schema reads it: ``"20"`` is the integer 20 in a query string."""
    if isinstance(value, list):
        return [_from_wire(item, schema.get("items", {})) for item in value]
    if not isinstance(value, str):
        return value
    types = _types(schema)
    if "integer" in types and re.fullmatch(r"-?\d+", value):
        return int(value)
    if "boolean" in types and value in ("true", "false"):
        return value == "true"
    if "null" in types and value == "null":
        return None
    return value


def _only_unknown_query_parameters(case: Any) -> bool:
    """The case's one negation is query parameters the operation does not declare: the parts
    it declares are generated valid, and so are its declared query parameters, checked here
    against the document. OpenAPI cannot close a parameter list and the service ignores what
    it does not declare; schemathesis means to skip such cases, but fails some (it reads a
    declared integer in its text spelling, ``pageSize=20``, as invalid)."""
    if case.meta is None:
        return False
    # Security schemes read as header parameters; the test sends valid credentials instead.
    headers = [h for h in case.operation.headers if "x-original-security-type" not in h.definition]
    declared_in = {
        ParameterLocation.PATH: list(case.operation.path_parameters),
        ParameterLocation.HEADER: headers,
        ParameterLocation.COOKIE: list(case.operation.cookies),
    }
    for location, component in case.meta.components.items():
        if location == ParameterLocation.QUERY or not component.mode.is_negative:
            continue
        if declared_in.get(location, [location]):
            return False
    query = case.query or {}
    declared = {parameter.name for parameter in case.operation.query}
    if not set(query) - declared:
        return False
    schema = case.operation.get_parameter_set(ParameterLocation.QUERY).schema
    properties = schema.get("properties", {})
    known = {n: _from_wire(v, properties.get(n, {})) for n, v in query.items() if n in declared}
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return bool(validator.is_valid(known))


def negative_data_rejection_but_unknown_query(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis' ``negative_data_rejection``, but for undeclared query parameters alone."""
    try:
        negative_data_rejection(ctx, response, case)
    except AcceptedNegativeData:
        if _only_unknown_query_parameters(case):
            return None
        raise
    return None


load_all_checks()
# Every check schemathesis has (``--checks all``), positive_data_acceptance narrowed as above.
ALL_CHECKS = [
    {
        positive_data_acceptance: positive_data_acceptance_narrowed,
        negative_data_rejection: negative_data_rejection_but_unknown_query,
    }.get(check, check)
    for check in CHECKS.get_all()
    if not is_check_class(check)
]


def _document_app() -> Any:
    """An app that only serves its document (its database is never touched)."""
    return create_app(Settings(database_url="sqlite://", secret_key="contract-" + "x" * 32))


# The document as the service serves it; each test sends its cases to a live server.
schema = schemathesis.openapi.from_dict(_document_app().openapi())

A_PAST_INSTANT = "2024-12-01T12:34:56.000Z"
A_VALID_RRULE = "FREQ=WEEKLY;BYDAY=MO"
_INSTANT: TypeAdapter[dt.datetime] = TypeAdapter(DateTimeIn)


def _instant(value: Any) -> dt.datetime | None:
    try:
        return _INSTANT.validate_python(value)
    except ValidationError:
        return None


@schema.hook
def map_case(context: Any, case: Any) -> Any:
    """Schema-valid cases also keep to the rules JSON Schema cannot state, which the document
    gives in words (and the service answers with a 400 or 422 named in its responses):
    ``scheduledEnd`` not before ``scheduledStart``, ``actualStart`` not in the future, an RRULE
    that parses, occurs and repeats at most hourly, and an RRULE for ``autoCreateEnabled``.
    Schema-invalid cases are left as generated."""
    body = case.body
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return case
    if not isinstance(body, dict):
        return case
    start, end = _instant(body.get("scheduledStart")), _instant(body.get("scheduledEnd"))
    if start and end and end < start:
        body["scheduledStart"], body["scheduledEnd"] = body["scheduledEnd"], body["scheduledStart"]
    actual = _instant(body.get("actualStart"))
    if actual and actual > dt.datetime.now(dt.UTC):
        body["actualStart"] = A_PAST_INSTANT
    if isinstance(body.get("rrule"), str):
        try:
            recurrence.validate(body["rrule"], _instant(body.get("dtstart")))
        except recurrence.InvalidRecurrence:
            body["rrule"] = A_VALID_RRULE
    planned_by_hand = body.get("rrule") is None and (case.method == "POST" or "rrule" in body)
    if body.get("autoCreateEnabled") is True and planned_by_hand:
        body["rrule"] = A_VALID_RRULE
    return case


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


@pytest.fixture(scope="module")
def live_servers() -> Iterator[dict[str, LiveServer]]:
    """One server per database for the whole module, started on first use."""
    servers: dict[str, LiveServer] = {}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def live_url(settings: Settings, live_servers: dict[str, LiveServer]) -> str:
    server = live_servers.get(settings.database_url)
    if server is None:
        server = live_servers[settings.database_url] = LiveServer(create_app(settings)).start()
    return server.url


def _logout_session(case: Any, base_url: str, caller: Caller) -> dict[str, str]:
    """A session of the admin's that logout may revoke; opened by login when none is left."""
    if caller.spare_sessions:
        return caller.spare_sessions.pop()
    login = case.operation.schema[LOGIN]["POST"]
    response = login.Case(
        body={"email": caller.admin.email, "password": PASSWORD}, media_type="application/json"
    ).call(base_url=base_url)
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
def test_every_operation_passes_every_check(
    case: Any, live_url: str, contract_caller: Caller
) -> None:
    """Every schemathesis check, for every operation, over HTTP."""
    headers = dict(contract_caller.admin.headers)
    if case.path == LOGOUT:
        headers = _logout_session(case, live_url, contract_caller)
    case.call_and_validate(base_url=live_url, headers=headers, checks=ALL_CHECKS, timeout=30)


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
        ("POST", "/invitations/v1/rs/accept/credentials"),  # the e-mailed token authenticates
        ("GET", "/health"),
        ("PUT", "/storage/v1/uploads/{file_id}"),
        ("GET", "/integrations/v1/calendar/{token}.ics"),  # the token in the path is the key
        # A provider link's token, in the path, is the credential.
        ("GET", "/provider/v1/{token}"),
        ("PATCH", "/provider/v1/{token}/check-in"),
        ("PATCH", "/provider/v1/{token}/execute"),
        # Anyone must be able to verify the register (issue 11): its keys and checkpoints.
        ("GET", "/register/v1/keys"),
        ("GET", "/register/v1/checkpoints/{checkpointId}"),
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


# --- methods and operation ids ----------------------------------------------------------------

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


def _allow(response: httpx.Response) -> set[str]:
    return {m.strip() for m in response.headers.get("allow", "").split(",") if m.strip()}


def _templates(app: Any) -> dict[str, set[str]]:
    """Every route template of the app and the methods its routes take, all routes of the
    template together (each decorator is a route of its own)."""
    templates: dict[str, set[str]] = {}
    for route in iter_route_contexts(app.router.routes):
        if route.path and route.methods:
            templates.setdefault(route.path, set()).update(route.methods)
    return templates


async def test_every_path_answers_405_with_every_method_it_takes(
    app: Any, client: httpx.AsyncClient
) -> None:
    """Walks every route: each method its path does not take is a 405 whose ``Allow`` lists
    exactly the methods it does take (the union over its routes); each it takes is not a 405.
    Path parameters are ``1``, which no literal route segment is."""
    templates = _templates(app)
    assert len(templates) > 30
    for template, taken in templates.items():
        path = re.sub(r"{[^}]*}", "1", template)
        for method in METHODS:
            r = await client.request(method, path)
            label = f"{method} {path}"
            if method in taken:
                assert r.status_code != 405, label
                continue
            assert r.status_code == 405, f"{label}: {r.status_code}"
            assert _allow(r) == taken, f"{label}: Allow {r.headers.get('allow')}, takes {taken}"
            if method != "HEAD":
                assert r.headers["content-type"] == PROBLEM_JSON, label
                assert r.json()["status"] == 405


async def test_a_literal_path_is_not_a_bad_parameter_of_another(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    """``/interventions/v2/rs/curative`` is the POST-only resource, not a non-integer
    ``{interventionId}``: GET there is a 405, before authentication; ``abc`` stays a 400."""
    org: Org = await factory.org()
    for method, path, allow in [
        ("GET", "/interventions/v2/rs/curative", {"POST"}),
        ("DELETE", "/interventions/v2/rs/training-exercise", {"POST"}),
        ("PATCH", "/interventions/v2/rs/preventive/routine", {"POST"}),
        ("GET", "/interventions/v2/mb/check-in", {"PATCH"}),
        ("GET", "/interventions/v2/mb/execute", {"PATCH"}),
        ("GET", "/interventions/v2/mb/preventive/unplanned", {"POST"}),
        ("PUT", "/interventions/v2/rs/1", {"GET", "DELETE"}),
        ("POST", "/sites/v1/rs/1", {"GET", "PATCH", "DELETE"}),
    ]:
        for headers in ({}, org.admin.headers):
            r = await client.request(method, path, headers=headers)
            assert r.status_code == 405, f"{method} {path}: {r.status_code} {r.text}"
            assert _allow(r) == allow, f"{method} {path}: {r.headers.get('allow')}"
            assert r.json()["detail"] == f"Method {method} is not allowed on {path}."
    r = await client.get("/interventions/v2/rs/abc", headers=org.admin.headers)
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["field"] == "interventionId"
    r = await client.patch(
        "/interventions/v2/rs/preventive/abc", json={}, headers=org.admin.headers
    )
    assert r.status_code == 400, r.text


OPERATION_ID = re.compile(r"^[a-z][A-Za-z]+$")
SEED_OPERATION_IDS = {
    ("POST", "/interventions/v2/rs/curative"): "createCurative",
    ("POST", "/interventions/v2/mb/preventive/unplanned"): "createUnplannedPreventive",
    ("PATCH", "/interventions/v2/rs/preventive/{interventionId}"): "updatePreventive",
    ("PATCH", "/interventions/v2/rs/training-exercise/{interventionId}"): "updateTrainingExercise",
    ("PATCH", "/interventions/v2/rs/{interventionId}/verify"): "verifyIntervention",
    ("GET", "/interventions/v2/rs/{interventionId}"): "getIntervention",
    ("GET", "/interventions/v2/rs"): "listInterventions",
    ("POST", LOGIN): "login",
    ("PUT", "/storage/v1/uploads/{file_id}"): "uploadFile",
}


async def test_every_operation_has_a_short_unique_camel_case_id(client: httpx.AsyncClient) -> None:
    document = await _document(client)
    ids: dict[str, str] = {}
    for method, path, operation in _operations(document):
        label = f"{method} {path}"
        operation_id = operation.get("operationId", "")
        assert OPERATION_ID.match(operation_id), f"{label}: operationId {operation_id!r}"
        assert operation_id not in ids, f"{label} and {ids.get(operation_id)}: {operation_id}"
        ids[operation_id] = label
    by_operation = {label: operation_id for operation_id, label in ids.items()}
    for (method, path), wanted in SEED_OPERATION_IDS.items():
        assert by_operation[f"{method} {path}"] == wanted
