"""Tenancy (SPEC §3): another organisation's ids behave exactly as ids that do not exist.

404 in the path, 422 in a body, with the same problem document (the id apart), and the other
organisation's data left as it was.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from interventions.db import utcnow
from interventions.interventions.models import Intervention
from interventions.notifications.models import Notification
from interventions.references.models import Anomaly
from tests.factories import Org
from tests.helpers import END, MISSING, RS, START

JPEG = b"\xff\xd8\xff" + bytes(61)


async def create(
    client: httpx.AsyncClient, org: Org, kind: str, creation_status: int = 0, anomaly: int = 0
) -> int:
    common = {"scheduledStart": START, "scheduledEnd": END, "creationStatus": creation_status}
    if kind == "preventive":
        path, body = f"{RS}/preventive/routine", {**common, "routineId": org.routine_id}
    elif kind == "curative":
        path, body = f"{RS}/curative", {**common, "anomalyIds": [org.anomaly_ids[anomaly]]}
    else:
        path = f"{RS}/training-exercise"
        body = {**common, "ruleId": org.training_rule_id, "siteIds": [org.site_ids[0]]}
    r = await client.post(path, json=body, headers=org.admin.headers)
    assert r.status_code == 201, r.text
    return int(r.json()["data"]["id"])


def unplanned_body(org: Org) -> dict[str, Any]:
    return {
        "companyId": org.company_ids[0],
        "siteIds": [org.site_ids[0]],
        "ruleIds": [org.rule_ids[0]],
        "signature": {"name": "s.jpg", "mimeType": "image/jpeg", "size": len(JPEG)},
        "provider": {"firstName": "Ann", "lastName": "Lee"},
    }


async def unplanned(client: httpx.AsyncClient, org: Org, *, upload: bool = True) -> dict[str, Any]:
    """An executed, signed preventive intervention (status 4), its signature uploaded."""
    r = await client.post(
        "/interventions/v2/mb/preventive/unplanned",
        json=unplanned_body(org),
        headers=org.admin.headers,
    )
    assert r.status_code == 201, r.text
    payload: dict[str, Any] = r.json()
    if upload:
        put = await client.put(
            payload["presignedUrl"], content=JPEG, headers={"content-type": "image/jpeg"}
        )
        assert put.status_code == 200, put.text
    return payload


async def notifications(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    r = await client.get("/notifications/v1/rs", headers=headers)
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


@dataclass
class World:
    """Two organisations: ``a`` is the caller, ``b`` the other one."""

    a: Org
    b: Org
    a_preventive: int  # status 1
    a_training: int  # status 1
    a_curative: int  # status 1
    a_executed: int  # unplanned, status 4
    a_notification: str  # the admin's, about a_executed
    a_manager_notification: str
    b_preventive: int
    b_training: int
    b_curative: int  # status 4
    b_executed: int
    b_notification: str  # b's admin's


async def build(client: httpx.AsyncClient, factory: Any) -> World:
    a: Org = await factory.org()
    b: Org = await factory.org()
    a_executed = (await unplanned(client, a))["data"]["id"]
    b_executed = (await unplanned(client, b))["data"]["id"]
    a_notes = await notifications(client, a.admin.headers)
    a_manager_notes = await notifications(client, a.manager.headers)
    b_notes = await notifications(client, b.admin.headers)
    return World(
        a=a,
        b=b,
        a_preventive=await create(client, a, "preventive"),
        a_training=await create(client, a, "training"),
        a_curative=await create(client, a, "curative", anomaly=0),
        a_executed=a_executed,
        a_notification=a_notes[0]["id"],
        a_manager_notification=a_manager_notes[0]["id"],
        b_preventive=await create(client, b, "preventive"),
        b_training=await create(client, b, "training"),
        b_curative=await create(client, b, "curative", 2, anomaly=0),
        b_executed=b_executed,
        b_notification=b_notes[0]["id"],
    )


async def snapshot(client: httpx.AsyncClient, factory: Any, org: Org) -> dict[str, Any]:
    """Everything of ``org`` the tests could disturb: interventions, anomalies, notifications."""
    async with factory.db.reader() as s:
        interventions = (
            await s.execute(select(Intervention.id).where(Intervention.organization_id == org.id))
        ).scalars()
        anomalies = (
            await s.execute(
                select(Anomaly.id, Anomaly.status).where(Anomaly.organization_id == org.id)
            )
        ).all()
        notes = (
            await s.execute(
                select(Notification.id, Notification.read_at).where(
                    Notification.organization_id == org.id
                )
            )
        ).all()
    state: dict[str, Any] = {"anomalies": sorted(anomalies), "notifications": sorted(notes)}
    for iid in sorted(interventions):
        r = await client.get(f"{RS}/{iid}", headers=org.viewer.headers)
        assert r.status_code == 200, r.text
        state[str(iid)] = r.json()["data"]
    return state


def without(value: Any, ident: int | str) -> str:
    """``value`` as JSON text with ``ident`` replaced by a placeholder wherever it appears."""
    text = json.dumps(value, sort_keys=True)
    return re.sub(rf"(?<![0-9A-Za-z_]){re.escape(str(ident))}(?![0-9A-Za-z_])", "<ID>", text)


def assert_same_problem(
    foreign: httpx.Response, foreign_id: int | str, missing: httpx.Response, missing_id: int | str
) -> None:
    """Same status, same members, same title; texts differing only by the id."""
    assert foreign.status_code == missing.status_code, (foreign.text, missing.text)
    assert foreign.headers["content-type"] == "application/problem+json"
    assert missing.headers["content-type"] == "application/problem+json"
    f, m = foreign.json(), missing.json()
    assert f.keys() == m.keys()
    assert f["title"] == m["title"]
    for key in f:
        if key == "instance":  # the request's own path, which holds the id in path cases
            assert f[key] == foreign.url.path
            assert m[key] == missing.url.path
        else:
            assert without(f[key], foreign_id) == without(m[key], missing_id), key


# --- another organisation's intervention in the path ----------------------------------------

PathCase = tuple[str, Callable[[int], str], dict[str, Any] | None, Callable[[World], int]]

PATH_CASES: dict[str, PathCase] = {
    "get-preventive": ("GET", lambda i: f"{RS}/{i}", None, lambda w: w.b_preventive),
    "get-curative": ("GET", lambda i: f"{RS}/{i}", None, lambda w: w.b_curative),
    "get-training": ("GET", lambda i: f"{RS}/{i}", None, lambda w: w.b_training),
    "patch-preventive": (
        "PATCH",
        lambda i: f"{RS}/preventive/{i}",
        {"description": "Mine now", "creationStatus": 1},
        lambda w: w.b_preventive,
    ),
    "patch-training": (
        "PATCH",
        lambda i: f"{RS}/training-exercise/{i}",
        {"description": "Mine now", "creationStatus": 1},
        lambda w: w.b_training,
    ),
    "validate-training": (
        "PATCH",
        lambda i: f"{RS}/training-exercise/{i}",
        {"validateIntervention": True},
        lambda w: w.b_training,
    ),
    "verify-executed": (
        "PATCH",
        lambda i: f"{RS}/{i}/verify",
        {"decision": 1, "decisionComment": "Fine"},
        lambda w: w.b_executed,
    ),
    "verify-curative": (
        "PATCH",
        lambda i: f"{RS}/{i}/verify",
        {"decision": 2, "decisionComment": "No"},
        lambda w: w.b_curative,
    ),
}


@pytest.mark.parametrize("case", list(PATH_CASES))
async def test_foreign_intervention_in_path_is_404(
    client: httpx.AsyncClient, factory: Any, case: str
) -> None:
    method, path, body, target = PATH_CASES[case]
    w = await build(client, factory)
    before = await snapshot(client, factory, w.b)
    foreign_id = target(w)
    for headers in (w.a.admin.headers, w.a.manager.headers):
        foreign = await client.request(method, path(foreign_id), json=body, headers=headers)
        missing = await client.request(method, path(MISSING), json=body, headers=headers)
        assert foreign.status_code == 404, foreign.text
        assert_same_problem(foreign, foreign_id, missing, MISSING)
    assert await snapshot(client, factory, w.b) == before


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("preventive", "a_curative"),
        ("training-exercise", "a_curative"),
        ("preventive", "a_training"),
        ("training-exercise", "a_preventive"),
        ("training-exercise", "a_executed"),
    ],
)
async def test_intervention_of_another_kind_is_404(
    client: httpx.AsyncClient, factory: Any, path: str, target: str
) -> None:
    w = await build(client, factory)
    intervention_id = getattr(w, target)
    before = await snapshot(client, factory, w.a)
    body = {"description": "Wrong door", "creationStatus": 1}
    r = await client.patch(f"{RS}/{path}/{intervention_id}", json=body, headers=w.a.admin.headers)
    missing = await client.patch(f"{RS}/{path}/{MISSING}", json=body, headers=w.a.admin.headers)
    assert r.status_code == 404, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["title"] == missing.json()["title"]
    assert r.json()["type"] == missing.json()["type"]
    assert await snapshot(client, factory, w.a) == before


# --- another organisation's reference in a body -------------------------------------------

# (method, path, body with the reference, field named in errors, the foreign reference)
BodyCase = tuple[
    str,
    Callable[[World], str],
    Callable[[World, Any], dict[str, Any]],
    str,
    Callable[[World], Any],
]


def curative(w: World, **extra: Any) -> dict[str, Any]:
    return {
        "scheduledStart": START,
        "scheduledEnd": END,
        "creationStatus": 0,
        "anomalyIds": [w.a.anomaly_ids[1]],
        **extra,
    }


def training(w: World, **extra: Any) -> dict[str, Any]:
    return {
        "scheduledStart": START,
        "scheduledEnd": END,
        "creationStatus": 0,
        "ruleId": w.a.training_rule_id,
        "siteIds": [w.a.site_ids[0]],
        **extra,
    }


def _unplanned(w: World, **extra: Any) -> dict[str, Any]:
    return {**unplanned_body(w.a), **extra}


CURATIVE = lambda w: f"{RS}/curative"  # noqa: E731
ROUTINE = lambda w: f"{RS}/preventive/routine"  # noqa: E731
TRAINING = lambda w: f"{RS}/training-exercise"  # noqa: E731
UNPLANNED = lambda w: "/interventions/v2/mb/preventive/unplanned"  # noqa: E731
PATCH_PREVENTIVE = lambda w: f"{RS}/preventive/{w.a_preventive}"  # noqa: E731
PATCH_TRAINING = lambda w: f"{RS}/training-exercise/{w.a_training}"  # noqa: E731
VERIFY = lambda w: f"{RS}/{w.a_executed}/verify"  # noqa: E731

BODY_CASES: dict[str, BodyCase] = {
    # POST /curative
    "curative-anomaly": (
        "POST",
        CURATIVE,
        lambda w, x: curative(w, anomalyIds=[x]),
        "anomalyIds",
        lambda w: w.b.anomaly_ids[1],
    ),
    "curative-anomaly-among-own": (
        "POST",
        CURATIVE,
        lambda w, x: curative(w, anomalyIds=[w.a.anomaly_ids[2], x]),
        "anomalyIds",
        lambda w: w.b.anomaly_ids[3],
    ),
    "curative-contact": (
        "POST",
        CURATIVE,
        lambda w, x: curative(w, assignedCompanyContactId=x),
        "assignedCompanyContactId",
        lambda w: w.b.contact_ids[0],
    ),
    "curative-profile": (
        "POST",
        CURATIVE,
        lambda w, x: curative(w, assignedProfileId=x),
        "assignedProfileId",
        lambda w: w.b.manager.profile_id,
    ),
    "curative-user": (
        "POST",
        CURATIVE,
        lambda w, x: curative(w, assignedUserId=x),
        "assignedUserId",
        lambda w: w.b.manager.user_id,
    ),
    # POST /preventive/routine
    "routine": (
        "POST",
        ROUTINE,
        lambda w, x: {
            "scheduledStart": START,
            "scheduledEnd": END,
            "creationStatus": 0,
            "routineId": x,
        },
        "routineId",
        lambda w: w.b.routine_id,
    ),
    # POST /training-exercise
    "training-rule": (
        "POST",
        TRAINING,
        lambda w, x: training(w, ruleId=x),
        "ruleId",
        lambda w: w.b.training_rule_id,
    ),
    "training-site": (
        "POST",
        TRAINING,
        lambda w, x: training(w, siteIds=[w.a.site_ids[1], x]),
        "siteIds",
        lambda w: w.b.site_ids[0],
    ),
    "training-contact": (
        "POST",
        TRAINING,
        lambda w, x: training(w, assignedCompanyContactId=x),
        "assignedCompanyContactId",
        lambda w: w.b.contact_ids[1],
    ),
    "training-profile": (
        "POST",
        TRAINING,
        lambda w, x: training(w, assignedProfileId=x),
        "assignedProfileId",
        lambda w: w.b.admin.profile_id,
    ),
    "training-user": (
        "POST",
        TRAINING,
        lambda w, x: training(w, assignedUserId=x),
        "assignedUserId",
        lambda w: w.b.viewer.user_id,
    ),
    # POST /mb/preventive/unplanned
    "unplanned-company": (
        "POST",
        UNPLANNED,
        lambda w, x: _unplanned(w, companyId=x),
        "companyId",
        lambda w: w.b.company_ids[0],
    ),
    "unplanned-site": (
        "POST",
        UNPLANNED,
        lambda w, x: _unplanned(w, siteIds=[x]),
        "siteIds",
        lambda w: w.b.site_ids[0],
    ),
    "unplanned-rule": (
        "POST",
        UNPLANNED,
        lambda w, x: _unplanned(w, ruleIds=[x]),
        "ruleIds",
        lambda w: w.b.rule_ids[0],
    ),
    # PATCH /preventive/{id}
    "preventive-site-rule": (
        "PATCH",
        PATCH_PREVENTIVE,
        lambda w, x: {"siteRuleIds": [w.a.site_rule_ids[0], x]},
        "siteRuleIds",
        lambda w: w.b.site_rule_ids[0],
    ),
    "preventive-contact": (
        "PATCH",
        PATCH_PREVENTIVE,
        lambda w, x: {"assignedCompanyContactId": x},
        "assignedCompanyContactId",
        lambda w: w.b.contact_ids[0],
    ),
    "preventive-profile": (
        "PATCH",
        PATCH_PREVENTIVE,
        lambda w, x: {"assignedProfileId": x},
        "assignedProfileId",
        lambda w: w.b.manager.profile_id,
    ),
    "preventive-user": (
        "PATCH",
        PATCH_PREVENTIVE,
        lambda w, x: {"assignedUserId": x},
        "assignedUserId",
        lambda w: w.b.manager.user_id,
    ),
    # PATCH /training-exercise/{id}
    "training-update-rule": (
        "PATCH",
        PATCH_TRAINING,
        lambda w, x: {"ruleId": x},
        "ruleId",
        lambda w: w.b.training_rule_id,
    ),
    "training-update-site": (
        "PATCH",
        PATCH_TRAINING,
        lambda w, x: {"siteIds": [x]},
        "siteIds",
        lambda w: w.b.site_ids[2],
    ),
    "training-update-contact": (
        "PATCH",
        PATCH_TRAINING,
        lambda w, x: {"assignedCompanyContactId": x},
        "assignedCompanyContactId",
        lambda w: w.b.contact_ids[0],
    ),
    "training-update-profile": (
        "PATCH",
        PATCH_TRAINING,
        lambda w, x: {"assignedProfileId": x},
        "assignedProfileId",
        lambda w: w.b.admin.profile_id,
    ),
    "training-update-user": (
        "PATCH",
        PATCH_TRAINING,
        lambda w, x: {"assignedUserId": x},
        "assignedUserId",
        lambda w: w.b.admin.user_id,
    ),
    # PATCH /{id}/verify
    "verify-notification": (
        "PATCH",
        VERIFY,
        lambda w, x: {"decision": 1, "decisionComment": "Fine", "notificationId": x},
        "notificationId",
        lambda w: w.b_notification,
    ),
    "verify-colleague-notification": (
        "PATCH",
        VERIFY,
        lambda w, x: {"decision": 2, "decisionComment": "No", "notificationId": x},
        "notificationId",
        lambda w: w.a_manager_notification,
    ),
}


@pytest.mark.parametrize("case", list(BODY_CASES))
async def test_foreign_reference_in_body_is_422(
    client: httpx.AsyncClient, factory: Any, case: str
) -> None:
    method, path, body, field, foreign_ref = BODY_CASES[case]
    w = await build(client, factory)
    before_a = await snapshot(client, factory, w.a)
    before_b = await snapshot(client, factory, w.b)
    foreign_id = foreign_ref(w)
    missing_id: int | str = MISSING if isinstance(foreign_id, int) else "ntf_" + "0" * 32
    foreign = await client.request(
        method, path(w), json=body(w, foreign_id), headers=w.a.admin.headers
    )
    missing = await client.request(
        method, path(w), json=body(w, missing_id), headers=w.a.admin.headers
    )
    assert foreign.status_code == 422, foreign.text
    assert field in [e["field"] for e in foreign.json()["errors"]], foreign.text
    assert_same_problem(foreign, foreign_id, missing, missing_id)
    # Refused: neither organisation changed.
    assert await snapshot(client, factory, w.a) == before_a
    assert await snapshot(client, factory, w.b) == before_b


async def test_own_references_are_accepted(client: httpx.AsyncClient, factory: Any) -> None:
    """The same bodies with the caller's own ids succeed: the 422s above are about tenancy."""
    w = await build(client, factory)
    own = {
        "curative-contact": w.a.contact_ids[0],
        "curative-profile": w.a.manager.profile_id,
        "routine": w.a.routine_id,
        "training-rule": w.a.training_rule_id,
        "training-site": w.a.site_ids[2],
        "unplanned-company": w.a.company_ids[1],
        "preventive-site-rule": w.a.site_rule_ids[1],
        "preventive-user": w.a.viewer.user_id,
        "curative-user": w.a.manager.user_id,
        "training-update-user": w.a.admin.user_id,
        "training-update-site": w.a.site_ids[2],
        "training-update-contact": w.a.contact_ids[1],
        "verify-notification": w.a_notification,
    }
    for case, ref in own.items():
        method, path, body, _, _ = BODY_CASES[case]
        r = await client.request(method, path(w), json=body(w, ref), headers=w.a.admin.headers)
        assert r.status_code in (200, 201), (case, r.text)
        if case.startswith("curative"):
            # Its anomaly is taken now: free it for the next curative case.
            intervention_id = r.json()["data"]["id"]
            async with factory.db.writer() as s, s.begin():
                await s.execute(
                    update(Anomaly).where(Anomaly.id == w.a.anomaly_ids[1]).values(status=0)
                )
                await s.execute(
                    update(Intervention)
                    .where(Intervention.id == intervention_id)
                    .values(status=7, deleted_at=utcnow())
                )


# --- signature files ------------------------------------------------------------------------


async def test_signature_of_another_organisation_is_404(
    client: httpx.AsyncClient, factory: Any
) -> None:
    a: Org = await factory.org()
    b: Org = await factory.org()
    b_signature = (await unplanned(client, b))["data"]["imgSignature"]
    own = await client.get(b_signature, headers=b.viewer.headers)
    assert own.status_code == 200
    assert own.content == JPEG
    foreign_id = b_signature.rsplit("/", 1)[1]
    missing_id = uuid.uuid4().hex
    for member in (a.admin, a.manager, a.viewer):
        foreign = await client.get(b_signature, headers=member.headers)
        missing = await client.get(f"/storage/v1/rs/files/{missing_id}", headers=member.headers)
        assert foreign.status_code == 404, foreign.headers.get("content-type")
        assert JPEG not in foreign.content
        assert_same_problem(foreign, foreign_id, missing, missing_id)


async def test_signature_never_uploaded_is_404(client: httpx.AsyncClient, factory: Any) -> None:
    a: Org = await factory.org()
    signature = (await unplanned(client, a, upload=False))["data"]["imgSignature"]
    r = await client.get(signature, headers=a.admin.headers)
    assert r.status_code == 404, r.text
    assert r.headers["content-type"] == "application/problem+json"


async def test_signature_of_cancelled_intervention_stays_readable(
    client: httpx.AsyncClient, factory: Any
) -> None:
    """A cancelled intervention stays in the register (SPEC §4.3), its signature with it;
    for another organisation both stay 404."""
    a: Org = await factory.org()
    b: Org = await factory.org()
    data = (await unplanned(client, a))["data"]
    assert (await client.get(data["imgSignature"], headers=a.admin.headers)).status_code == 200
    # Executed interventions cannot be cancelled through the API (they await verification);
    # the row is cancelled the way the service would.
    async with factory.db.writer() as s, s.begin():
        await s.execute(
            update(Intervention)
            .where(Intervention.id == data["id"])
            .values(status=7, deleted_at=utcnow())
        )
    read = await client.get(f"{RS}/{data['id']}", headers=a.admin.headers)
    assert read.status_code == 200, read.text
    assert read.json()["data"]["status"] == 7
    r = await client.get(data["imgSignature"], headers=a.admin.headers)
    assert r.status_code == 200, r.headers.get("content-type")
    assert r.content == JPEG
    assert (await client.get(f"{RS}/{data['id']}", headers=b.admin.headers)).status_code == 404
    r = await client.get(data["imgSignature"], headers=b.admin.headers)
    assert r.status_code == 404
    assert JPEG not in r.content


# --- notifications -----------------------------------------------------------------------


async def test_notifications_are_the_callers_own(client: httpx.AsyncClient, factory: Any) -> None:
    a: Org = await factory.org()
    b: Org = await factory.org()
    a_id = (await unplanned(client, a, upload=False))["data"]["id"]
    b_ids = {(await unplanned(client, b, upload=False))["data"]["id"] for _ in range(2)}

    a_admin = await client.get("/notifications/v1/rs", headers=a.admin.headers)
    assert a_admin.status_code == 200, a_admin.text
    assert a_admin.json()["totalCount"] == 1
    assert [n["interventionId"] for n in a_admin.json()["data"]] == [a_id]
    a_manager = await notifications(client, a.manager.headers)
    assert [n["interventionId"] for n in a_manager] == [a_id]
    # One each: the admin's is not the manager's.
    assert a_admin.json()["data"][0]["id"] != a_manager[0]["id"]
    viewer = await client.get("/notifications/v1/rs", headers=a.viewer.headers)
    assert viewer.json()["data"] == []
    assert viewer.json()["totalCount"] == 0

    for member in (b.admin, b.manager):
        notes = await notifications(client, member.headers)
        assert {n["interventionId"] for n in notes} == b_ids
        assert len(notes) == 2
        assert all(isinstance(n["id"], str) and n["readAt"] is None for n in notes)

    # Marking one's own read touches nobody else's.
    r = await client.patch(
        f"{RS}/{a_id}/verify",
        json={"decision": 1, "decisionComment": "ok", "notificationId": a_manager[0]["id"]},
        headers=a.manager.headers,
    )
    assert r.status_code == 200, r.text
    assert (await notifications(client, a.manager.headers))[0]["readAt"] is not None
    assert (await notifications(client, a.admin.headers))[0]["readAt"] is None
    assert all(n["readAt"] is None for n in await notifications(client, b.admin.headers))
