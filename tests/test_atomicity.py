"""One request, one transaction (SPEC §5): a failure in the middle of a write leaves nothing.

A failure is injected into a function the service calls once the intervention row has been
flushed; the client must get a 500 problem document without internals, and the organisation
must hold exactly the rows it held before.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from interventions.interventions import presenter, repository
from interventions.notifications import service as notifications_service
from interventions.references.models import Anomaly
from tests.factories import Org
from tests.helpers import END, RS, START, curative_body_on, org_state

INJECTED = "injected failure 7f3a"


@pytest.fixture
async def raw_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Like ``client``, but hands back the 500 response instead of re-raising the app's error."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("10.0.1.1", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def fail_on_call(monkeypatch: pytest.MonkeyPatch, target: Any, name: str, nth: int) -> list[int]:
    """Make ``target.name`` raise RuntimeError on its ``nth`` call; the others run normally."""
    original = getattr(target, name)
    calls: list[int] = []

    def check() -> None:
        calls.append(1)
        if len(calls) == nth:
            raise RuntimeError(INJECTED)

    if inspect.iscoroutinefunction(original):

        async def failing_async(*args: Any, **kwargs: Any) -> Any:
            check()
            return await original(*args, **kwargs)

        monkeypatch.setattr(target, name, failing_async)
    else:

        def failing(*args: Any, **kwargs: Any) -> Any:
            check()
            return original(*args, **kwargs)

        monkeypatch.setattr(target, name, failing)
    return calls


def assert_internal_error(r: httpx.Response) -> None:
    assert r.status_code == 500, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 500
    assert {"type", "title", "status", "detail"} <= body.keys()
    for leak in (INJECTED, "Traceback", "RuntimeError", 'File "', ".py", "sqlalchemy"):
        assert leak not in r.text, leak


def unplanned_body(org: Org) -> dict[str, Any]:
    return {
        "companyId": org.company_ids[0],
        "siteIds": org.site_ids[:2],
        "ruleIds": org.rule_ids[:2],
        "signature": {"name": "s.png", "mimeType": "image/png", "size": 128},
        "provider": {"firstName": "Ann", "lastName": "Lee", "email": "ann@example.org"},
    }


# --- creations -------------------------------------------------------------------------------

# anomalies 0 and 1 sit on different sites, so a curative on both writes two kinds of links.
TWO_SITES = [0, 1]


@pytest.mark.parametrize(
    ("target", "name", "nth"),
    [
        (repository, "add_links", 1),  # the anomaly links
        (repository, "add_links", 2),  # the site links, after the anomaly links went in
        (repository, "record_history", 1),  # after the anomalies moved to "in repair"
        (presenter, "to_read", 1),  # everything written, only the answer left
    ],
    ids=["first-links", "second-links", "history", "read-back"],
)
async def test_curative_failure_leaves_nothing(
    client: httpx.AsyncClient,
    raw_client: httpx.AsyncClient,
    factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    target: Any,
    name: str,
    nth: int,
) -> None:
    org: Org = await factory.org()
    ids = [org.anomaly_ids[i] for i in TWO_SITES]
    before = await org_state(factory, org)
    calls = fail_on_call(monkeypatch, target, name, nth)
    r = await raw_client.post(
        f"{RS}/curative", json=curative_body_on(org, ids), headers=org.admin.headers
    )
    assert len(calls) >= nth  # the failure did happen where intended
    assert_internal_error(r)
    after = await org_state(factory, org)
    assert after == before
    assert after["interventions"] == 0
    assert after["intervention_anomalies"] == 0
    assert all(status == 0 for _, status, _ in after["anomalies"])

    # The anomalies were not left "in repair": the same curative goes through once it can.
    monkeypatch.undo()
    ok = await client.post(
        f"{RS}/curative", json=curative_body_on(org, ids), headers=org.admin.headers
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["data"]["anomalyIds"] == sorted(ids)


@pytest.mark.parametrize(
    ("target", "name", "nth"),
    [
        (repository, "add_links", 2),  # after the site links
        (repository, "add_links", 3),  # after site and rule links
        (notifications_service, "notify_writers", 1),  # file, intervention and links written
        (repository, "record_history", 1),  # notifications written too
    ],
    ids=["rule-links", "site-rule-links", "notify", "history"],
)
async def test_unplanned_failure_leaves_nothing(
    client: httpx.AsyncClient,
    raw_client: httpx.AsyncClient,
    factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    target: Any,
    name: str,
    nth: int,
) -> None:
    org: Org = await factory.org()
    before = await org_state(factory, org)
    calls = fail_on_call(monkeypatch, target, name, nth)
    r = await raw_client.post(
        "/interventions/v2/mb/preventive/unplanned",
        json=unplanned_body(org),
        headers=org.manager.headers,
    )
    assert len(calls) >= nth
    assert_internal_error(r)
    assert "presignedUrl" not in r.json()
    after = await org_state(factory, org)
    assert after == before
    assert after["stored_files"] == 0
    assert after["notifications"] == 0
    assert (await client.get("/notifications/v1/rs", headers=org.admin.headers)).json()[
        "data"
    ] == []

    monkeypatch.undo()
    ok = await client.post(
        "/interventions/v2/mb/preventive/unplanned",
        json=unplanned_body(org),
        headers=org.manager.headers,
    )
    assert ok.status_code == 201, ok.text
    assert (await org_state(factory, org))["stored_files"] == 1


async def test_routine_failure_leaves_nothing(
    raw_client: httpx.AsyncClient, factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    org: Org = await factory.org()
    before = await org_state(factory, org)
    fail_on_call(monkeypatch, repository, "add_links", 2)
    r = await raw_client.post(
        f"{RS}/preventive/routine",
        json={
            "scheduledStart": START,
            "scheduledEnd": END,
            "creationStatus": 1,
            "routineId": org.routine_id,
        },
        headers=org.admin.headers,
    )
    assert_internal_error(r)
    assert await org_state(factory, org) == before


# --- changes to an existing intervention ---------------------------------------------------


async def test_update_failure_changes_nothing(
    client: httpx.AsyncClient,
    raw_client: httpx.AsyncClient,
    factory: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    org: Org = await factory.org()
    created = await client.post(
        f"{RS}/preventive/routine",
        json={
            "scheduledStart": START,
            "scheduledEnd": END,
            "creationStatus": 0,
            "routineId": org.routine_id,
        },
        headers=org.admin.headers,
    )
    assert created.status_code == 201, created.text
    iid = created.json()["data"]["id"]
    assign = await client.patch(
        f"{RS}/preventive/{iid}",
        json={"assignedProfileId": org.manager.profile_id},
        headers=org.admin.headers,
    )
    assert assign.status_code == 200, assign.text
    before_read = (await client.get(f"{RS}/{iid}", headers=org.admin.headers)).json()["data"]
    before = await org_state(factory, org)

    # Fails after the site rules were replaced and both e-mails were queued.
    fail_on_call(monkeypatch, repository, "record_history", 1)
    body = {
        "description": "Half done",
        "creationStatus": 1,
        "siteRuleIds": [org.site_rule[(org.site_ids[2], org.rule_ids[0])]],
        "assignedProfileId": org.admin.profile_id,
        "sendUpdateEmailToCurrentAssignee": True,
        "previousAssigneeNotification": {"sendEmail": True, "reason": "Reorganised"},
    }
    r = await raw_client.patch(f"{RS}/preventive/{iid}", json=body, headers=org.admin.headers)
    assert_internal_error(r)
    assert await org_state(factory, org) == before
    assert (await client.get(f"{RS}/{iid}", headers=org.admin.headers)).json()[
        "data"
    ] == before_read

    monkeypatch.undo()
    ok = await client.patch(f"{RS}/preventive/{iid}", json=body, headers=org.admin.headers)
    assert ok.status_code == 200, ok.text
    assert (await org_state(factory, org))["email_outbox"] == 2


async def test_verify_failure_keeps_anomalies_in_repair(
    client: httpx.AsyncClient,
    raw_client: httpx.AsyncClient,
    factory: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    org: Org = await factory.org()
    ids = [org.anomaly_ids[i] for i in TWO_SITES]
    created = await client.post(
        f"{RS}/curative",
        json=curative_body_on(org, ids, creation_status=2),
        headers=org.admin.headers,
    )
    assert created.status_code == 201, created.text
    iid = created.json()["data"]["id"]
    before = await org_state(factory, org)
    assert [status for _, status, _ in before["anomalies"]][:2] == [1, 1]

    fail_on_call(monkeypatch, repository, "record_history", 1)  # after the anomalies moved
    r = await raw_client.patch(
        f"{RS}/{iid}/verify",
        json={"decision": 1, "decisionComment": "Good"},
        headers=org.manager.headers,
    )
    assert_internal_error(r)
    assert await org_state(factory, org) == before
    data = (await client.get(f"{RS}/{iid}", headers=org.admin.headers)).json()["data"]
    assert data["status"] == 4
    assert data["verifiedAt"] is None
    assert data["decisionComment"] is None

    monkeypatch.undo()
    ok = await client.patch(
        f"{RS}/{iid}/verify",
        json={"decision": 1, "decisionComment": "Good"},
        headers=org.manager.headers,
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["data"]["status"] == 5


async def test_verify_failure_keeps_notification_unread(
    client: httpx.AsyncClient,
    raw_client: httpx.AsyncClient,
    factory: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    org: Org = await factory.org()
    created = await client.post(
        "/interventions/v2/mb/preventive/unplanned",
        json=unplanned_body(org),
        headers=org.admin.headers,
    )
    assert created.status_code == 201, created.text
    iid = created.json()["data"]["id"]
    note = (await client.get("/notifications/v1/rs", headers=org.manager.headers)).json()["data"][0]
    before = await org_state(factory, org)

    fail_on_call(monkeypatch, repository, "record_history", 1)
    body = {"decision": 2, "decisionComment": "Missing pages", "notificationId": note["id"]}
    r = await raw_client.patch(f"{RS}/{iid}/verify", json=body, headers=org.manager.headers)
    assert_internal_error(r)
    assert await org_state(factory, org) == before
    notes = (await client.get("/notifications/v1/rs", headers=org.manager.headers)).json()["data"]
    assert notes[0]["id"] == note["id"]
    assert notes[0]["readAt"] is None
    assert (await client.get(f"{RS}/{iid}", headers=org.admin.headers)).json()["data"][
        "status"
    ] == 4


# --- a client error in the middle of a curative ---------------------------------------------


@pytest.mark.parametrize("order", ["open-first", "busy-first"])
async def test_curative_with_a_busy_anomaly_takes_none(
    client: httpx.AsyncClient, factory: Any, order: str
) -> None:
    org: Org = await factory.org()
    open_id, busy_id = org.anomaly_ids[0], org.anomaly_ids[1]
    first = await client.post(
        f"{RS}/curative", json=curative_body_on(org, [busy_id]), headers=org.admin.headers
    )
    assert first.status_code == 201, first.text
    before = await org_state(factory, org)

    ids = [open_id, busy_id] if order == "open-first" else [busy_id, open_id]
    r = await client.post(
        f"{RS}/curative", json=curative_body_on(org, ids), headers=org.admin.headers
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "anomalyIds" in [e["field"] for e in r.json()["errors"]]
    assert str(busy_id) in r.json()["detail"]
    assert await org_state(factory, org) == before
    async with factory.db.reader() as s:
        assert (await s.get(Anomaly, open_id)).status == 0  # type: ignore[union-attr]
        assert (await s.get(Anomaly, busy_id)).status == 1  # type: ignore[union-attr]

    # The open one alone is still free to take.
    ok = await client.post(
        f"{RS}/curative", json=curative_body_on(org, [open_id]), headers=org.admin.headers
    )
    assert ok.status_code == 201, ok.text
