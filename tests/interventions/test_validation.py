"""The bad-input matrix of SPEC §2 over the write endpoints and login.

Every case starts from a request the endpoint accepts (``target()``), changes one thing, and
checks the status, the problem+json shape and the offending field. A representative subset
then checks that a refused request changed nothing.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.factories import PASSWORD, Factory, Org
from tests.helpers import (
    CURATIVE,
    LOGIN,
    MAX_ID,
    NOTIFICATIONS,
    ROUTINE,
    SEED_END,
    SEED_START,
    TRAINING,
    UNPLANNED,
    assert_problem,
    create,
    curative_body,
    intervention_url,
    routine_body,
    training_create_body,
    unplanned_body,
)

MIB = 1024 * 1024

ENDPOINTS = [
    "curative",
    "unplanned",
    "preventive",
    "training",
    "verify",
    "routine",
    "training-create",
    "login",
]
WITH_PATH_ID = ["preventive", "training", "verify"]
_KEEP: Any = object()


@dataclass
class Target:
    """One endpoint, ready to be called with a body it accepts."""

    name: str
    method: str
    template: str  # "{id}" stands for the intervention id in the path
    body: dict[str, Any]
    headers: dict[str, str]
    success: int
    org: Org
    intervention_id: int | None = None

    def url_with(self, path_id: object) -> str:
        return self.template.format(id=path_id)

    @property
    def url(self) -> str:
        return self.url_with(self.intervention_id)

    async def send(
        self,
        client: httpx.AsyncClient,
        body: Any = _KEEP,
        *,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        url: str | None = None,
    ) -> httpx.Response:
        all_headers = {**self.headers, **(headers or {})}
        if content is None:
            content = json.dumps(self.body if body is _KEEP else body).encode()
            all_headers.setdefault("content-type", "application/json")
        return await client.request(
            self.method, url or self.url, content=content, headers=all_headers
        )


async def target(client: httpx.AsyncClient, factory: Factory, name: str) -> Target:
    org = await factory.org()
    admin = org.admin.headers
    if name == "curative":
        return Target(name, "POST", CURATIVE, curative_body(org), admin, 201, org)
    if name == "unplanned":
        return Target(name, "POST", UNPLANNED, unplanned_body(org), admin, 201, org)
    if name == "routine":
        return Target(name, "POST", ROUTINE, routine_body(org), admin, 201, org)
    if name == "training-create":
        return Target(name, "POST", TRAINING, training_create_body(org), admin, 201, org)
    if name == "login":
        body = {"email": org.admin.email, "password": PASSWORD, "organizationId": org.id}
        return Target(name, "POST", LOGIN, body, {}, 201, org)
    if name == "preventive":
        iid = await create(client, ROUTINE, routine_body(org), org)
        body = {
            "description": "Re-planned",
            "scheduledStart": SEED_START,
            "scheduledEnd": SEED_END,
            "siteRuleIds": [org.site_rule[(org.site_ids[1], org.rule_ids[0])]],
            "creationStatus": 1,
            "assignedCompanyContactId": org.contact_ids[0],
            "assignedProfileId": org.manager.profile_id,
            "sendUpdateEmailToCurrentAssignee": False,
            "previousAssigneeNotification": {"sendEmail": True, "reason": "Re-planned."},
        }
        url = "/interventions/v2/rs/preventive/{id}"
        return Target(name, "PATCH", url, body, admin, 200, org, iid)
    if name == "training":
        iid = await create(client, TRAINING, training_create_body(org), org)
        body = {
            "description": "Drill, all buildings",
            "scheduledStart": SEED_START,
            "scheduledEnd": SEED_END,
            "ruleId": org.training_rule_id,
            "siteIds": [org.site_ids[0], org.site_ids[1]],
            "creationStatus": 1,
            "assignedCompanyContactId": org.contact_ids[1],
            "assignedUserId": org.manager.user_id,
            "validateIntervention": False,
        }
        url = "/interventions/v2/rs/training-exercise/{id}"
        return Target(name, "PATCH", url, body, admin, 200, org, iid)
    assert name == "verify"
    iid = await create(client, UNPLANNED, unplanned_body(org), org)
    body = {"decisionComment": "Checked on site.", "decision": 1}
    return Target(name, "PATCH", "/interventions/v2/rs/{id}/verify", body, admin, 200, org, iid)


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _steps(path: str) -> list[str | int]:
    return [int(index) if index else key for key, index in _STEP.findall(path)]


def get_in(body: dict[str, Any], path: str) -> Any:
    node: Any = body
    for step in _steps(path):
        node = node[step]
    return node


def with_value(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    *parents, last = _steps(path)
    node: Any = out
    for step in parents:
        node = node[step]
    node[last] = value
    return out


def without(body: dict[str, Any], path: str) -> dict[str, Any]:
    out = copy.deepcopy(body)
    *parents, last = _steps(path)
    node: Any = out
    for step in parents:
        node = node[step]
    del node[last]
    return out


def by_endpoint(rows: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, path in rows:
        out.setdefault(name, []).append(path)
    return out


Case = tuple[str, Any, int, tuple[str, ...]]  # label, body (bytes: raw JSON), status, fields


async def expect_refusals(client: httpx.AsyncClient, t: Target, rows: list[Case]) -> None:
    """Send every body; report every one that is not refused as expected, not just the first."""
    failures = []
    for label, body, status, fields in rows:
        if isinstance(body, bytes):
            r = await t.send(client, content=body, headers={"content-type": "application/json"})
        else:
            r = await t.send(client, body)
        try:
            assert_problem(r, status, *fields)
        except AssertionError as exc:
            failures.append(f"{label}: {exc}".splitlines()[0])
    assert not failures, "\n".join(failures)


# --- the accepted request, as is ----------------------------------------------------------


@pytest.mark.parametrize("name", ENDPOINTS)
async def test_baseline_request_is_accepted(
    client: httpx.AsyncClient, factory: Factory, name: str
) -> None:
    t = await target(client, factory, name)
    r = await t.send(client)
    assert r.status_code == t.success, r.text
    assert r.headers["content-type"] == "application/json"
    assert set(r.json()) >= {"data"}


# --- missing and unknown fields -----------------------------------------------------------

REQUIRED = {
    "curative": ["scheduledStart", "scheduledEnd", "anomalyIds", "creationStatus"],
    "unplanned": ["companyId", "siteIds", "ruleIds", "signature", "provider"],
    "verify": ["decisionComment", "decision"],
    "routine": ["scheduledStart", "scheduledEnd", "creationStatus", "routineId"],
    "training-create": ["scheduledStart", "scheduledEnd", "ruleId", "siteIds", "creationStatus"],
    "login": ["email", "password"],
}
REQUIRED_NESTED = {
    "unplanned": [
        "signature.name",
        "signature.mimeType",
        "signature.size",
        "provider.firstName",
        "provider.lastName",
    ]
}


@pytest.mark.parametrize("name", REQUIRED)
async def test_missing_required_fields(
    client: httpx.AsyncClient, factory: Factory, name: str
) -> None:
    t = await target(client, factory, name)
    paths = REQUIRED[name] + REQUIRED_NESTED.get(name, [])
    rows: list[Case] = [(p, without(t.body, p), 400, (p,)) for p in paths]
    rows.append(("{}", {}, 400, tuple(REQUIRED[name])))  # every missing field listed
    await expect_refusals(client, t, rows)


@pytest.mark.parametrize("name", ["preventive", "training"])
async def test_empty_patch_changes_nothing(
    client: httpx.AsyncClient, factory: Factory, name: str
) -> None:
    t = await target(client, factory, name)
    before = (await client.get(intervention_url(t.intervention_id or 0), headers=t.headers)).json()
    r = await t.send(client, {})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    # GET adds detail members (sites, history, actions…) to the resource the PATCH returns.
    assert data.keys() <= before["data"].keys()
    assert data == {k: v for k, v in before["data"].items() if k in data}


UNKNOWN = {
    "curative": ["foo", "anomalyId", "assigned_user_id"],
    "unplanned": ["provider.phone", "signature.url", "actualEnd", "description"],
    "preventive": ["siteIds", "previousAssigneeNotification.sendSms", "validateIntervention"],
    "training": ["validate", "siteRuleIds", "attendees"],
    "verify": ["comment", "decisionDate"],
    "routine": ["routine_id", "siteRuleIds"],
    "training-create": ["ruleIds", "creation_status"],
    "login": ["remember", "Email"],
}


@pytest.mark.parametrize("name", UNKNOWN)
async def test_unknown_field_is_named(
    client: httpx.AsyncClient, factory: Factory, name: str
) -> None:
    t = await target(client, factory, name)
    rows: list[Case] = [(p, with_value(t.body, p, 1), 400, (p,)) for p in UNKNOWN[name]]
    await expect_refusals(client, t, rows)


async def test_every_offending_field_is_listed(client: httpx.AsyncClient, factory: Factory) -> None:
    t = await target(client, factory, "curative")
    body = with_value(t.body, "creationStatus", "0")
    body = with_value(body, "colour", "red")
    body = with_value(body, "scheduledEnd", "2023-02-29T00:00:00Z")
    body = without(body, "anomalyIds")
    fields = ("creationStatus", "colour", "scheduledEnd", "anomalyIds")
    await expect_refusals(client, t, [("four faults", body, 400, fields)])


# --- integers: types and range ------------------------------------------------------------

INTEGER_FIELDS = by_endpoint(
    [
        ("curative", "anomalyIds[0]"),
        ("curative", "creationStatus"),
        ("curative", "assignedCompanyContactId"),
        ("curative", "assignedUserId"),
        ("unplanned", "companyId"),
        ("unplanned", "siteIds[0]"),
        ("unplanned", "ruleIds[0]"),
        ("unplanned", "signature.size"),
        ("preventive", "siteRuleIds[0]"),
        ("preventive", "creationStatus"),
        ("preventive", "assignedProfileId"),
        ("preventive", "assignedCompanyContactId"),
        ("training", "ruleId"),
        ("training", "siteIds[0]"),
        ("training", "creationStatus"),
        ("training", "assignedUserId"),
        ("verify", "decision"),
        ("routine", "routineId"),
        ("routine", "creationStatus"),
        ("training-create", "ruleId"),
        ("training-create", "siteIds[0]"),
        ("training-create", "creationStatus"),
        ("training-create", "assignedProfileId"),
        ("login", "organizationId"),
    ]
)
ENUM_FIELDS = {"creationStatus", "decision", "signature.size"}
WRONG_TYPES: dict[str, Callable[[Any], Any]] = {
    "float": float,  # 1.0: an integral float is still not an integer
    "string": str,  # "1"
    "bool": lambda _: True,
    "list": lambda v: [v],
    "object": lambda v: {"id": v},
}


@pytest.mark.parametrize("name", INTEGER_FIELDS)
async def test_integer_fields(client: httpx.AsyncClient, factory: Factory, name: str) -> None:
    """Another type → 400; outside ±(2^53 − 1) → 400; at the edge → well-formed (422)."""
    t = await target(client, factory, name)
    rows: list[Case] = []
    for path in INTEGER_FIELDS[name]:
        valid = get_in(t.body, path)
        for kind, wrong in WRONG_TYPES.items():
            rows.append((f"{path}={kind}", with_value(t.body, path, wrong(valid)), 400, (path,)))
        if path in ENUM_FIELDS:
            continue
        for value in (MAX_ID + 1, -MAX_ID - 1, 10**30):
            rows.append((f"{path}={value}", with_value(t.body, path, value), 400, (path,)))
        for value in (MAX_ID, -MAX_ID):  # in range, naming nothing
            rows.append((f"{path}={value}", with_value(t.body, path, value), 422, ()))
    await expect_refusals(client, t, rows)


# --- arrays -------------------------------------------------------------------------------

ID_ARRAYS = by_endpoint(
    [
        ("curative", "anomalyIds"),
        ("unplanned", "siteIds"),
        ("unplanned", "ruleIds"),
        ("preventive", "siteRuleIds"),
        ("training", "siteIds"),
        ("training-create", "siteIds"),
    ]
)


@pytest.mark.parametrize("name", ID_ARRAYS)
async def test_id_arrays(client: httpx.AsyncClient, factory: Factory, name: str) -> None:
    """Minimum length 1, and an array: not a bare id, not null."""
    t = await target(client, factory, name)
    rows: list[Case] = []
    for path in ID_ARRAYS[name]:
        first = get_in(t.body, path)[0]
        rows.append((f"{path}=[]", with_value(t.body, path, []), 400, (path,)))
        rows.append((f"{path}=id", with_value(t.body, path, first), 400, (path,)))
        rows.append((f"{path}=[[id]]", with_value(t.body, path, [[first]]), 400, ()))
        if name not in ("preventive", "training"):  # optional on PATCH: null is "no change"
            rows.append((f"{path}=null", with_value(t.body, path, None), 400, (path,)))
    await expect_refusals(client, t, rows)


async def test_duplicate_ids_counted_once(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    h = org.admin.headers
    a0, s0, s1, r0 = org.anomaly_ids[0], org.site_ids[0], org.site_ids[1], org.rule_ids[0]

    r = await client.post(CURATIVE, json={**curative_body(org), "anomalyIds": [a0, a0]}, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["data"]["anomalyIds"] == [a0]

    body = {**unplanned_body(org), "siteIds": [s0, s0], "ruleIds": [r0, r0, r0]}
    r = await client.post(UNPLANNED, json=body, headers=h)
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert data["siteIds"] == [s0]
    assert data["ruleIds"] == [r0]
    assert data["siteRuleIds"] == [org.site_rule[(s0, r0)]]

    body = {**training_create_body(org), "siteIds": [s1, s0, s1]}
    r = await client.post(TRAINING, json=body, headers=h)
    assert r.status_code == 201, r.text
    training_id = r.json()["data"]["id"]
    assert sorted(r.json()["data"]["siteIds"]) == sorted([s0, s1])

    r = await client.patch(f"{TRAINING}/{training_id}", json={"siteIds": [s0, s0]}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["siteIds"] == [s0]

    preventive_id = await create(client, ROUTINE, routine_body(org), org)
    sr = org.site_rule[(s1, r0)]
    r = await client.patch(
        f"/interventions/v2/rs/preventive/{preventive_id}",
        json={"siteRuleIds": [sr, sr]},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["siteRuleIds"] == [sr]
    assert r.json()["data"]["siteIds"] == [s1]


# --- texts --------------------------------------------------------------------------------

TEXT_FIELDS: dict[str, dict[str, str | None]] = {  # path → the member that echoes it
    "curative": {"description": "description"},
    "unplanned": {
        "provider.actionComment": "providerActionComment",
        "provider.comment": "providerGeneralComment",
    },
    "preventive": {"description": "description", "previousAssigneeNotification.reason": None},
    "training": {"description": "description"},
    "verify": {"decisionComment": "decisionComment"},
    "training-create": {"description": "description"},
}


@pytest.mark.parametrize("char", ["x", "é"])
@pytest.mark.parametrize("name", TEXT_FIELDS)
async def test_free_text_length(
    client: httpx.AsyncClient, factory: Factory, name: str, char: str
) -> None:
    """At most 2500 characters (characters, not bytes): 2501 → 400, 2500 accepted."""
    t = await target(client, factory, name)
    fields = TEXT_FIELDS[name]
    rows: list[Case] = [(p, with_value(t.body, p, char * 2501), 400, (p,)) for p in fields]
    rows += [(f"{p}=int", with_value(t.body, p, 2500), 400, (p,)) for p in fields]
    await expect_refusals(client, t, rows)
    body = t.body
    for path in fields:
        body = with_value(body, path, char * 2500)
    r = await t.send(client, body)
    assert r.status_code == t.success, r.text
    for member in fields.values():
        if member:
            assert r.json()["data"][member] == char * 2500


async def test_names_and_emails_length(client: httpx.AsyncClient, factory: Factory) -> None:
    t = await target(client, factory, "unplanned")
    rows: list[Case] = [
        (p, with_value(t.body, p, "a" * 251), 400, (p,))
        for p in ("provider.firstName", "provider.lastName", "signature.name")
    ]
    email = "a" * 239 + "@example.org"
    rows.append(("provider.email", with_value(t.body, "provider.email", email), 400, ()))
    rows += [
        ("provider.email=bad", with_value(t.body, "provider.email", "not-an-address"), 400, ()),
        ("provider.email=int", with_value(t.body, "provider.email", 12), 400, ()),
    ]
    await expect_refusals(client, t, rows)
    body = with_value(t.body, "provider.firstName", "a" * 250)
    body = with_value(body, "signature.name", "s" * 246 + ".png")
    r = await t.send(client, body)
    assert r.status_code == 201, r.text
    assert r.json()["data"]["providerName"] == "a" * 250 + " Lee"

    login = await target(client, factory, "login")
    assert len(email) == 251
    rows = [
        ("email=251", with_value(login.body, "email", email), 400, ("email",)),
        ("email=int", with_value(login.body, "email", 1), 400, ("email",)),
        ("password=int", with_value(login.body, "password", 1), 400, ("password",)),
    ]
    await expect_refusals(client, login, rows)


async def test_decision_comment_required_even_to_accept(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    t = await target(client, factory, "verify")
    rows: list[Case] = [
        (repr(v), with_value(t.body, "decisionComment", v), 400, ("decisionComment",))
        for v in ("", None)
    ]
    await expect_refusals(client, t, rows)


# --- date-times ---------------------------------------------------------------------------

DATE_FIELDS = {
    "curative": ["scheduledStart", "scheduledEnd"],
    "unplanned": ["actualStart"],
    "preventive": ["scheduledStart", "scheduledEnd"],
    "training": ["scheduledStart", "scheduledEnd"],
    "routine": ["scheduledStart", "scheduledEnd"],
    "training-create": ["scheduledStart", "scheduledEnd"],
}
BAD_DATES: list[Any] = [
    "2023-02-29T00:00:00Z",  # not a leap year
    "1900-02-29T00:00:00Z",  # divisible by 100, not by 400
    "2024-01-01T00:00:00",  # no Z and no offset
    "2024-01-01T00:00:00+24:00",  # no such offset
    "2024-01-01T00:00:00+01:60",
    "2024-01-01T00:00:00+0100",  # RFC 3339 wants the colon
    "2024-01-01T00:00:00+01",
    "2024-01-01T00:00:00Z+01:00",
    "0001-01-01T00:00:00+01:00",  # year 0 in UTC
    "9999-12-31T23:00:00-02:00",  # year 10000 in UTC
    "2024-01-01T00:00:00z",
    "2024-13-01T00:00:00Z",
    "2024-04-31T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "2024-01-01T24:00:00Z",
    "2024-01-01T10:60:00Z",
    "2024-01-01 00:00:00Z",
    "2024-01-01T10:00:00.Z",
    "2024-01-01Z",
    "2024-01-01",
    "2024-01-01T10Z",
    "+12024-01-01T00:00:00Z",
    " 2024-01-01T00:00:00Z",
    "",
    "not a date",
    1733056496000,
]


@pytest.mark.parametrize("name", DATE_FIELDS)
async def test_impossible_date_times(
    client: httpx.AsyncClient, factory: Factory, name: str
) -> None:
    t = await target(client, factory, name)
    rows: list[Case] = [
        (f"{p}={v!r}", with_value(t.body, p, v), 400, (p,))
        for p in DATE_FIELDS[name]
        for v in BAD_DATES
    ]
    await expect_refusals(client, t, rows)


VALID_DATES = [
    ("2024-02-29T00:00:00Z", "2024-02-29T00:00:00.000Z"),
    ("2000-02-29T12:00:00Z", "2000-02-29T12:00:00.000Z"),
    ("2024-01-01T10:00Z", "2024-01-01T10:00:00.000Z"),  # no seconds
    ("2024-01-01T10:00:00.5Z", "2024-01-01T10:00:00.500Z"),
    ("2024-01-01T10:00:00.123456789012Z", "2024-01-01T10:00:00.123Z"),  # many fraction digits
    ("2024-12-31T23:59:59.999Z", "2024-12-31T23:59:59.999Z"),
    # Decided (SPEC §2): an explicit offset is accepted and normalised to UTC.
    ("2024-01-01T10:00:00+00:00", "2024-01-01T10:00:00.000Z"),
    ("2024-01-01T10:00:00+02:00", "2024-01-01T08:00:00.000Z"),
    ("2024-12-31T23:30:00.25-01:00", "2025-01-01T00:30:00.250Z"),
    ("2024-03-01T01:00:00+05:30", "2024-02-29T19:30:00.000Z"),
    ("2024-01-01T10:00:00.123456789+00:00", "2024-01-01T10:00:00.123Z"),
]


@pytest.mark.parametrize("name", ["preventive", "training", "routine", "training-create"])
async def test_valid_date_times_accepted_and_normalised(
    client: httpx.AsyncClient, factory: Factory, name: str
) -> None:
    t = await target(client, factory, name)
    for value, expected in VALID_DATES:
        r = await t.send(client, {**t.body, "scheduledStart": value, "scheduledEnd": value})
        assert r.status_code == t.success, (value, r.text)
        data = r.json()["data"]
        assert data["scheduledStart"] == data["scheduledEnd"] == expected, value


async def test_valid_actual_start_accepted(client: httpx.AsyncClient, factory: Factory) -> None:
    t = await target(client, factory, "unplanned")
    for value, expected in VALID_DATES:
        r = await t.send(client, {**t.body, "actualStart": value})
        assert r.status_code == 201, (value, r.text)
        assert r.json()["data"]["actualStart"] == expected, value


async def test_actual_start_in_the_future(client: httpx.AsyncClient, factory: Factory) -> None:
    t = await target(client, factory, "unplanned")
    future = [("2999", {**t.body, "actualStart": "2999-01-01T00:00:00Z"}, 422, ())]
    await expect_refusals(client, t, future)


@pytest.mark.parametrize(
    "name", ["curative", "preventive", "training", "routine", "training-create"]
)
async def test_end_before_start(client: httpx.AsyncClient, factory: Factory, name: str) -> None:
    t = await target(client, factory, name)
    rows: list[Case] = [
        ("end<start", {**t.body, "scheduledStart": SEED_END, "scheduledEnd": SEED_START}, 422, ())
    ]
    if name in ("preventive", "training"):  # stored: 2024-11-01 08:00 → 10:00
        rows.append(("end<stored start", {"scheduledEnd": "2024-11-01T07:00:00Z"}, 422, ()))
        rows.append(("start>stored end", {"scheduledStart": "2024-11-01T11:00:00Z"}, 422, ()))
    await expect_refusals(client, t, rows)
    r = await t.send(client, {**t.body, "scheduledStart": SEED_START, "scheduledEnd": SEED_START})
    assert r.status_code == t.success, r.text  # the same instant is fine


# --- enums and booleans -------------------------------------------------------------------

ENUMS = {
    "curative": {"creationStatus": [3, -1, "0"]},
    "preventive": {"creationStatus": [3, None]},
    "training": {"creationStatus": [3]},
    "routine": {"creationStatus": [3, 10]},
    "training-create": {"creationStatus": [3]},
    "verify": {"decision": [0, 3, "accept", None]},
    "unplanned": {"signature.mimeType": ["image/gif", "application/pdf", "image/svg+xml", 1]},
}


@pytest.mark.parametrize("name", ENUMS)
async def test_unknown_enum_values(client: httpx.AsyncClient, factory: Factory, name: str) -> None:
    t = await target(client, factory, name)
    rows: list[Case] = [
        (f"{p}={v!r}", with_value(t.body, p, v), 400, (p,))
        for p, values in ENUMS[name].items()
        for v in values
    ]
    await expect_refusals(client, t, rows)


async def test_signature_metadata(client: httpx.AsyncClient, factory: Factory) -> None:
    """An image of 1 byte to 10 MiB."""
    t = await target(client, factory, "unplanned")
    rows: list[Case] = [
        (f"size={v}", with_value(t.body, "signature.size", v), 400, ("signature.size",))
        for v in (0, -1, 10 * MIB + 1)
    ]
    await expect_refusals(client, t, rows)
    for mime, size in (("image/jpeg", 1), ("image/png", 10 * MIB), ("image/webp", 5000)):
        body = with_value(t.body, "signature", {"name": "s", "mimeType": mime, "size": size})
        r = await t.send(client, body)
        assert r.status_code == 201, (mime, r.text)


BOOLEANS = {
    "preventive": ["sendUpdateEmailToCurrentAssignee", "previousAssigneeNotification.sendEmail"],
    "training": ["validateIntervention"],
}


@pytest.mark.parametrize("name", BOOLEANS)
async def test_boolean_fields_refuse_other_types(
    client: httpx.AsyncClient, factory: Factory, name: str
) -> None:
    t = await target(client, factory, name)
    rows: list[Case] = [
        (f"{p}={v!r}", with_value(t.body, p, v), 400, (p,))
        for p in BOOLEANS[name]
        for v in ("true", 1, 0, 1.0)
    ]
    await expect_refusals(client, t, rows)


# --- the body as a whole ------------------------------------------------------------------

NOT_JSON_OBJECTS = [
    b'{"scheduledStart": ',
    b"{'email': 'a'}",
    b'{"a": 1,}',
    b"not json",
    b"[]",
    b"1",
    b'"body"',
    b"null",
    b"[{}]",
    b"true",
]


@pytest.mark.parametrize("name", ENDPOINTS)
async def test_malformed_json_or_not_an_object(
    client: httpx.AsyncClient, factory: Factory, name: str
) -> None:
    t = await target(client, factory, name)
    rows: list[Case] = [(repr(raw), raw, 400, ()) for raw in NOT_JSON_OBJECTS]
    await expect_refusals(client, t, rows)


@pytest.mark.parametrize("name", ENDPOINTS)
async def test_body_that_is_not_utf8(
    client: httpx.AsyncClient, factory: Factory, name: str
) -> None:
    """Malformed like any other undecodable body: 400 with ``errors``, never a bare message."""
    t = await target(client, factory, name)
    rows: list[Case] = [
        ("latin-1 in a string", b'{"description": "caf\xe9"}', 400, ()),
        ("lone 0xff byte", b'{"description": "\xff"}', 400, ()),
    ]
    await expect_refusals(client, t, rows)


NOT_JSON_TYPES = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/xml",
    "application/jsonx",
    "json",
    None,
]
JSON_TYPES = [
    "application/json; charset=utf-8",
    "application/json;charset=UTF-8",
    "Application/JSON",
]


@pytest.mark.parametrize("name", ENDPOINTS)
async def test_content_type(client: httpx.AsyncClient, factory: Factory, name: str) -> None:
    """Not declared as JSON → 415; ``application/json`` with parameters → accepted."""
    t = await target(client, factory, name)
    raw = json.dumps(t.body).encode()
    failures = []
    for content_type in NOT_JSON_TYPES:
        headers = {"content-type": content_type} if content_type else {}
        r = await t.send(client, content=raw, headers=headers)
        try:
            assert_problem(r, 415)
        except AssertionError as exc:
            failures.append(f"{content_type}: {exc}".splitlines()[0])
    assert not failures, "\n".join(failures)
    for content_type in JSON_TYPES:
        if name in ("curative", "verify"):  # the first success uses the anomaly / the decision
            t = await target(client, factory, name)
            raw = json.dumps(t.body).encode()
        r = await t.send(client, content=raw, headers={"content-type": content_type})
        assert r.status_code == t.success, (content_type, r.text)


def oversized(size: int) -> bytes:
    head, tail = b'{"description": "', b'"}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


@pytest.mark.parametrize("name", ENDPOINTS)
async def test_body_over_one_mib(client: httpx.AsyncClient, factory: Factory, name: str) -> None:
    t = await target(client, factory, name)
    raw = oversized(MIB + 1)
    assert len(raw) == MIB + 1
    r = await t.send(client, content=raw, headers={"content-type": "application/json"})
    assert_problem(r, 413)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        big = oversized(2 * MIB)
        for i in range(0, len(big), 64 * 1024):
            yield big[i : i + 64 * 1024]

    r = await client.request(
        t.method, t.url, content=chunks(), headers={**t.headers, "content-type": "application/json"}
    )
    assert "content-length" not in r.request.headers
    assert_problem(r, 413)
    # At the limit the body is read: the 2500-character cap or the unknown field answers.
    r = await t.send(client, content=oversized(MIB), headers={"content-type": "application/json"})
    assert_problem(r, 400)


# --- path parameters ----------------------------------------------------------------------

BAD_PATH_IDS = ["abc", "1.5", "1e3", str(MAX_ID + 1), str(-MAX_ID - 1), "0x10", "true"]
UNKNOWN_PATH_IDS = [str(MAX_ID), str(-MAX_ID), "0", "-1"]


@pytest.mark.parametrize("name", [*WITH_PATH_ID, "get"])
async def test_path_parameter(client: httpx.AsyncClient, factory: Factory, name: str) -> None:
    """Not an integer in range → 400; well-formed but naming nothing → 404."""
    t = await target(client, factory, "preventive" if name == "get" else name)
    failures = []
    for value, status in [(v, 400) for v in BAD_PATH_IDS] + [(v, 404) for v in UNKNOWN_PATH_IDS]:
        if name == "get":
            r = await client.get(intervention_url(value), headers=t.headers)
        else:
            r = await t.send(client, url=t.url_with(value))
        try:
            assert_problem(r, status, *(["interventionId"] if status == 400 else []))
        except AssertionError as exc:
            failures.append(f"{value}: {exc}".splitlines()[0])
    assert not failures, "\n".join(failures)


# --- the two names of the assignee --------------------------------------------------------

ASSIGNEE_ENDPOINTS = ["curative", "preventive", "training", "training-create"]


@pytest.mark.parametrize("name", ASSIGNEE_ENDPOINTS)
async def test_assigned_user_id_is_a_user_id(
    client: httpx.AsyncClient, factory: Factory, name: str
) -> None:
    """SPEC §2: ``assignedUserId`` names a user (their profile in the organisation is meant),
    ``assignedProfileId`` a profile. The factory gives profiles ids far from their users'."""
    t = await target(client, factory, name)
    org = t.org
    taken: list[int] = []

    def body(**assignee: int) -> dict[str, Any]:
        out = {k: v for k, v in t.body.items() if k not in ("assignedUserId", "assignedProfileId")}
        if name == "curative":  # each curative intervention takes its own open anomaly
            out["anomalyIds"] = [a for a in org.anomaly_ids if a not in taken][:1]
        return {**out, **assignee}

    r = await t.send(client, body(assignedUserId=org.viewer.user_id))
    assert r.status_code == t.success, r.text
    data = r.json()["data"]
    taken.extend(data["anomalyIds"])
    assert (data["assignedUserId"], data["assignedProfileId"]) == (
        org.viewer.user_id,
        org.viewer.profile_id,
    )
    # A profile id is not a user id.
    r = await t.send(client, body(assignedUserId=org.viewer.profile_id))
    problem = assert_problem(r, 422)
    assert [e["field"] for e in problem["errors"]] == ["assignedUserId"]
    # Both names for the same profile are fine; for different profiles, a 400.
    both = {"assignedUserId": org.manager.user_id, "assignedProfileId": org.manager.profile_id}
    r = await t.send(client, body(**both))
    assert r.status_code == t.success, r.text
    assert r.json()["data"]["assignedProfileId"] == org.manager.profile_id
    taken.extend(r.json()["data"]["anomalyIds"])
    both = {"assignedUserId": org.manager.user_id, "assignedProfileId": org.admin.profile_id}
    problem = assert_problem(await t.send(client, body(**both)), 400)
    assert [e["field"] for e in problem["errors"]] == ["assignedProfileId"]
    # The same number under both names is a user and a profile that differ: refused.
    pid = org.viewer.profile_id
    r = await t.send(client, body(assignedUserId=pid, assignedProfileId=pid))
    assert_problem(r, 422)


async def test_a_user_without_a_profile_here_cannot_be_assigned(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    t = await target(client, factory, "curative")
    other = await factory.org()  # a real user, a member of another organisation only
    r = await t.send(client, {**t.body, "assignedUserId": other.admin.user_id})
    problem = assert_problem(r, 422)
    assert [e["field"] for e in problem["errors"]] == ["assignedUserId"]


# --- a refused request changes nothing ----------------------------------------------------


async def test_refused_curative_leaves_the_anomaly_open(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    t = await target(client, factory, "curative")
    anomaly = t.org.anomaly_ids[0]
    changes: list[tuple[str, Any, int]] = [
        ("colour", "red", 400),
        ("scheduledStart", "2023-02-29T00:00:00Z", 400),
        ("description", "x" * 2501, 400),
        ("creationStatus", 3, 400),
        ("assignedUserId", 1.0, 400),
        ("assignedProfileId", t.org.admin.profile_id, 400),  # differs from assignedUserId
        ("scheduledEnd", "2024-11-01T00:00:00Z", 422),
        ("anomalyIds", [anomaly, MAX_ID], 422),  # the open anomaly and one that does not exist
        ("assignedCompanyContactId", MAX_ID, 422),
        ("assignedUserId", MAX_ID, 422),
    ]
    rows: list[Case] = [(p, with_value(t.body, p, v), s, ()) for p, v, s in changes]
    rows.append(("too large", oversized(MIB + 1), 413, ()))
    await expect_refusals(client, t, rows)
    r = await t.send(
        client, content=json.dumps(t.body).encode(), headers={"content-type": "text/plain"}
    )
    assert_problem(r, 415)
    # Still open: a curative intervention can take it.
    r = await t.send(client)
    assert r.status_code == 201, r.text
    assert r.json()["data"]["anomalyIds"] == [anomaly]


PATCH_REFUSALS: dict[str, list[tuple[dict[str, Any], int]]] = {
    "preventive": [
        ({"siteRuleIds": [], "description": "changed"}, 400),
        ({"description": "changed", "siteRuleIds": ["1"]}, 400),
        ({"description": "changed", "creationStatus": 1, "colour": "red"}, 400),
        ({"description": "changed", "scheduledStart": "2024-02-30T00:00:00Z"}, 400),
        ({"siteRuleIds": ["SR"], "assignedUserId": "A", "assignedProfileId": "B"}, 400),
        ({"siteRuleIds": ["SR"], "scheduledEnd": "2024-10-01T00:00:00Z"}, 422),
        ({"siteRuleIds": ["SR"], "creationStatus": 1, "assignedProfileId": MAX_ID}, 422),
        ({"creationStatus": 1, "siteRuleIds": ["SR", MAX_ID]}, 422),
        ({"description": "changed", "sendUpdateEmailToCurrentAssignee": "yes"}, 400),
    ],
    "training": [
        ({"validateIntervention": True, "scheduledStart": "2024-11-01T08:00"}, 400),
        ({"validateIntervention": True, "ruleId": "R"}, 422),  # not a training rule
        ({"siteIds": ["S", MAX_ID], "description": "changed"}, 422),
        ({"description": "changed", "assignedUserId": "A", "assignedProfileId": "B"}, 400),
        ({"creationStatus": 2, "scheduledEnd": "2024-10-01T00:00:00Z"}, 422),
        ({"validateIntervention": True, "assignedCompanyContactId": MAX_ID}, 422),
    ],
}


def _fill(value: Any, org: Org) -> Any:
    """Placeholders: SR a site rule, R a check rule, S a site, A a user, B another's profile."""
    names = {
        "SR": org.site_rule[(org.site_ids[2], org.rule_ids[1])],
        "R": org.rule_ids[0],
        "S": org.site_ids[2],
        "A": org.manager.user_id,
        "B": org.admin.profile_id,
    }
    if isinstance(value, list):
        return [_fill(v, org) for v in value]
    if isinstance(value, str) and value in names:
        return names[value]
    return value


@pytest.mark.parametrize("name", PATCH_REFUSALS)
async def test_refused_patch_leaves_the_intervention_unchanged(
    client: httpx.AsyncClient, factory: Factory, name: str
) -> None:
    t = await target(client, factory, name)
    url = intervention_url(t.intervention_id or 0)
    before = await client.get(url, headers=t.headers)
    assert before.status_code == 200
    failures = []
    for body, status in PATCH_REFUSALS[name]:
        filled = {key: _fill(value, t.org) for key, value in body.items()}
        r = await t.send(client, filled)
        after = await client.get(url, headers=t.headers)
        try:
            assert_problem(r, status)
            assert after.json() == before.json()
        except AssertionError as exc:
            failures.append(f"{body}: {exc}".splitlines()[0])
    assert not failures, "\n".join(failures)


async def test_refused_verify_leaves_intervention_and_notification_unchanged(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    t = await target(client, factory, "verify")
    url = intervention_url(t.intervention_id or 0)
    before = (await client.get(url, headers=t.headers)).json()
    assert before["data"]["status"] == 4
    notes_before = (await client.get(NOTIFICATIONS, headers=t.headers)).json()
    assert notes_before["totalCount"] == 1
    body = {**t.body, "notificationId": notes_before["data"][0]["id"]}
    changes: list[tuple[dict[str, Any], int]] = [
        ({"decision": 0}, 400),
        ({"decision": 1.0}, 400),
        ({"decisionComment": "x" * 2501}, 400),
        ({"colour": "red"}, 400),
        ({"decisionComment": None}, 400),
        ({"notificationId": 12}, 400),
        ({"notificationId": "no-such-notification"}, 422),
    ]
    await expect_refusals(client, t, [(str(c), {**body, **c}, s, ()) for c, s in changes])
    assert (await client.get(url, headers=t.headers)).json() == before
    notes_after = (await client.get(NOTIFICATIONS, headers=t.headers)).json()
    assert notes_after == notes_before
    assert notes_after["data"][0]["readAt"] is None


async def test_refused_unplanned_notifies_nobody(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    t = await target(client, factory, "unplanned")
    org = t.org
    changes: list[tuple[str, Any, int]] = [
        ("signature.mimeType", "image/gif", 400),
        ("signature.size", 0, 400),
        ("siteIds", [], 400),
        ("provider.phone", "123", 400),
        ("actualStart", "2024-02-30T00:00:00Z", 400),
        ("companyId", MAX_ID, 422),
        ("ruleIds", [org.rule_ids[0], MAX_ID], 422),  # one rule that exists, one that does not
        ("siteIds", [org.site_ids[0], MAX_ID], 422),
        ("actualStart", "2999-01-01T00:00:00Z", 422),
    ]
    await expect_refusals(client, t, [(p, with_value(t.body, p, v), s, ()) for p, v, s in changes])
    for member in (org.admin, org.manager):
        notes = (await client.get(NOTIFICATIONS, headers=member.headers)).json()
        assert notes["data"] == []
        assert notes["totalCount"] == 0
    # The organisation's first accepted one is its first notification.
    r = await t.send(client)
    assert r.status_code == 201, r.text
    notes = (await client.get(NOTIFICATIONS, headers=org.admin.headers)).json()
    assert [n["interventionId"] for n in notes["data"]] == [r.json()["data"]["id"]]


# --- query parameters -----------------------------------------------------------------------


async def test_unknown_query_parameters_are_refused(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    """As unknown body fields (SPEC §2): a mistyped filter must not silently list everything."""
    org = await factory.org()
    h = org.admin.headers
    for url, names in [
        ("/interventions/v2/rs?siteid=1", ["siteid"]),
        ("/interventions/v2/rs?status=2&statuses=7&colour=red", ["statuses", "colour"]),
        ("/sites/v1/rs?pageSize=20&archived=true", ["archived"]),
        ("/notifications/v1/rs?unread=1", ["unread"]),
        (f"/interventions/v2/rs/{org.routine_id}?include=history", ["include"]),
        ("/health?verbose", ["verbose"]),
    ]:
        r = await client.get(url, headers=h)
        problem = assert_problem(r, 400)
        assert [e["field"] for e in problem["errors"]] == names, url
    # The declared ones still work, repeated included.
    r = await client.get("/interventions/v2/rs?status=2&status=7&pageSize=5", headers=h)
    assert r.status_code == 200, r.text
    r = await client.get(f"/sites/v1/rs?includeArchived=true&q=Site&siteId={1}", headers=h)
    assert_problem(r, 400)
    r = await client.get("/sites/v1/rs?includeArchived=true&q=Site", headers=h)
    assert r.status_code == 200, r.text
