"""On site (check-in with the PIN, execution with a signature), cancellation, information e-mail."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from interventions.notifications.models import OutboxEmail
from interventions.references.models import Anomaly
from tests.factories import Org
from tests.helpers import MB, RS, SIGNATURE, check_in, plan, wrong_pin

PNG = b"\x89PNG\r\n\x1a\n" + bytes(8)


async def test_check_in_then_execute(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    planned = await plan(client, org)
    r = await check_in(client, org, planned["id"], planned["codePin"])
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["status"] == 3
    assert data["actualStart"] is not None
    assert data["actualEnd"] is None
    body = {
        "interventionId": planned["id"],
        "firstName": "Paul",
        "lastName": "Durand",
        "email": "paul@provider.example",
        "providerActionComment": "Drill done",
        "comment": "All good",
        "signature": SIGNATURE,
        "attendeeCount": 42,
    }
    r = await client.patch(f"{MB}/execute", json=body, headers=org.manager.headers)
    assert r.status_code == 200, r.text
    payload = r.json()
    data = payload["data"]
    assert data["status"] == 4
    assert data["actualEnd"] is not None
    assert data["providerName"] == "Paul Durand"
    assert data["providerEmail"] == "paul@provider.example"
    assert data["providerActionComment"] == "Drill done"
    assert data["providerGeneralComment"] == "All good"
    assert data["attendeeCount"] == 42
    put = await client.put(
        payload["presignedUrl"], content=PNG, headers={"content-type": "image/png"}
    )
    assert put.status_code == 200, put.text
    got = await client.get(data["imgSignature"], headers=org.admin.headers)
    assert got.content == PNG
    notes = (await client.get("/notifications/v1/rs", headers=org.admin.headers)).json()["data"]
    assert [n["interventionId"] for n in notes] == [planned["id"]]
    detail = (await client.get(f"{RS}/{planned['id']}", headers=org.admin.headers)).json()["data"]
    assert [h["action"] for h in detail["history"]] == ["create", "check-in", "execute"]
    assert detail["actions"]["canBeVerified"] is True


async def test_execute_without_check_in_is_409(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    planned = await plan(client, org)
    body = {
        "interventionId": planned["id"],
        "firstName": "A",
        "lastName": "B",
        "signature": SIGNATURE,
    }
    r = await client.patch(f"{MB}/execute", json=body, headers=org.admin.headers)
    assert r.status_code == 409
    assert (await client.get(f"{RS}/{planned['id']}", headers=org.admin.headers)).json()["data"][
        "status"
    ] == 2


async def test_attendee_count_is_for_drills_only(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    planned = await plan(client, org, "curative")
    assert (await check_in(client, org, planned["id"], planned["codePin"])).status_code == 200
    body = {
        "interventionId": planned["id"],
        "firstName": "A",
        "lastName": "B",
        "signature": SIGNATURE,
        "attendeeCount": 3,
    }
    r = await client.patch(f"{MB}/execute", json=body, headers=org.admin.headers)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "attendeeCount"


async def test_pin_of_another_organisation_or_executed(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    other: Org = await factory.org()
    theirs = await plan(client, other)
    r = await check_in(client, org, theirs["id"], theirs["codePin"])
    assert r.status_code == 404
    assert (await client.get(f"{RS}/{theirs['id']}", headers=other.admin.headers)).json()["data"][
        "status"
    ] == 2
    mine = await plan(client, org)
    assert (await check_in(client, org, mine["id"], mine["codePin"])).status_code == 200
    again = await check_in(client, org, mine["id"], mine["codePin"])
    assert again.status_code == 409


async def test_wrong_pins_are_rate_limited(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    planned = await plan(client, org)
    wrong = wrong_pin(planned["codePin"])
    for _ in range(5):  # pin_max_failures defaults to 5
        r = await check_in(client, org, planned["id"], wrong)
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "codePin"
    r = await check_in(client, org, planned["id"], wrong)
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) > 0
    # Even the right PIN now waits: the codes cannot be walked.
    r = await check_in(client, org, planned["id"], planned["codePin"])
    assert r.status_code == 429
    # The same caller on another intervention is limited too.
    other = await plan(client, org)
    r = await check_in(client, org, other["id"], wrong_pin(other["codePin"]))
    assert r.status_code == 429
    assert (await client.get(f"{RS}/{planned['id']}", headers=org.admin.headers)).json()["data"][
        "status"
    ] == 2


@pytest.mark.parametrize("pin", [99999, 1000000, "123456", 123456.0, None])
async def test_pin_must_be_six_digits(client: httpx.AsyncClient, factory: Any, pin: Any) -> None:
    org: Org = await factory.org()
    planned = await plan(client, org)
    r = await client.patch(
        f"{MB}/check-in",
        json={"interventionId": planned["id"], "codePin": pin},
        headers=org.admin.headers,
    )
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "codePin"


async def test_viewer_cannot_check_in(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    planned = await plan(client, org)
    r = await client.patch(
        f"{MB}/check-in",
        json={"interventionId": planned["id"], "codePin": planned["codePin"]},
        headers=org.viewer.headers,
    )
    assert r.status_code == 403


async def test_cancel(client: httpx.AsyncClient, factory: Any) -> None:
    """SPEC §4.3 (decided): a cancelled intervention stays in the register."""
    org: Org = await factory.org()
    planned = await plan(client, org, "curative")
    url = f"{RS}/{planned['id']}"
    r = await client.request(
        "DELETE", url, json={"cancellationReason": "Duplicate"}, headers=org.admin.headers
    )
    assert r.status_code == 204, r.text
    assert r.content == b""
    read = await client.get(url, headers=org.viewer.headers)
    assert read.status_code == 200, read.text
    data = read.json()["data"]
    assert data["status"] == 7
    assert data["deletedAt"] is not None
    assert data["cancellationReason"] == "Duplicate"
    assert data["anomalyIds"] == [org.anomaly_ids[0]]
    assert data["actions"] == {
        "canBeUpdated": False,
        "canBeDeleted": False,
        "canBeExecuted": False,
        "canBeVerified": False,
    }
    cancel = data["history"][-1]
    assert cancel["action"] == "cancel"
    assert cancel["changes"]["status"] == {"from": 2, "to": 7}
    assert cancel["changes"]["cancellationReason"] == {"from": None, "to": "Duplicate"}
    assert cancel["changes"]["deletedAt"]["to"] == data["deletedAt"]
    async with factory.db.reader() as s:
        anomaly = await s.get(Anomaly, org.anomaly_ids[0])
        assert anomaly is not None
        assert anomaly.status == 0
    # Twice: 409, naming the state.
    again = await client.request("DELETE", url, headers=org.admin.headers)
    assert again.status_code == 409
    assert "cancelled" in again.json()["detail"]
    # Out of the default list; under the status filter.
    listed = (await client.get(RS, headers=org.admin.headers)).json()
    assert listed["totalCount"] == 0
    listed = (await client.get(f"{RS}?status=7", headers=org.admin.headers)).json()
    assert (listed["totalCount"], [i["id"] for i in listed["data"]]) == (1, [planned["id"]])
    assert listed["data"][0]["cancellationReason"] == "Duplicate"
    listed = (await client.get(f"{RS}?status=2&status=7", headers=org.admin.headers)).json()
    assert listed["totalCount"] == 1
    # A new curative may take the anomaly.
    await plan(client, org, "curative")


@pytest.mark.parametrize("kind", ["training", "curative"])
async def test_every_write_on_a_cancelled_intervention_is_409(
    client: httpx.AsyncClient, factory: Any, kind: str
) -> None:
    org: Org = await factory.org()
    planned = await plan(client, org, kind)
    iid = planned["id"]
    r = await client.request("DELETE", f"{RS}/{iid}", headers=org.admin.headers)
    assert r.status_code == 204, r.text
    before = (await client.get(f"{RS}/{iid}", headers=org.admin.headers)).json()
    h = org.admin.headers
    writes = [
        ("DELETE", f"{RS}/{iid}", None),
        ("PATCH", f"{RS}/{iid}/verify", {"decision": 1, "decisionComment": "ok"}),
        ("PATCH", f"{MB}/check-in", {"interventionId": iid, "codePin": planned["codePin"]}),
        (
            "PATCH",
            f"{MB}/execute",
            {"interventionId": iid, "firstName": "A", "lastName": "B", "signature": SIGNATURE},
        ),
        ("POST", f"{RS}/{iid}/emails/informations", {"email": "someone@example.org"}),
    ]
    if kind == "training":
        writes += [
            ("PATCH", f"{RS}/training-exercise/{iid}", {"description": "changed"}),
            ("PATCH", f"{RS}/training-exercise/{iid}", {"validateIntervention": True}),
        ]
    for method, path, body in writes:
        r = await client.request(method, path, json=body, headers=h)
        assert r.status_code == 409, (method, path, r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert "cancelled" in r.json()["detail"], r.text
    after = (await client.get(f"{RS}/{iid}", headers=org.admin.headers)).json()
    assert after == before
    async with factory.db.reader() as s:
        queued = (
            await s.execute(select(OutboxEmail).where(OutboxEmail.intervention_id == iid))
        ).all()
        assert queued == []


async def test_cancel_without_body_and_refusals(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    planned = await plan(client, org)
    assert (
        await client.request("DELETE", f"{RS}/{planned['id']}", headers=org.viewer.headers)
    ).status_code == 403
    bad = await client.request(
        "DELETE", f"{RS}/{planned['id']}", json={"reason": "x"}, headers=org.admin.headers
    )
    assert bad.status_code == 400
    assert (
        await client.request("DELETE", f"{RS}/{planned['id']}", headers=org.admin.headers)
    ).status_code == 204
    # An executed intervention awaits its verification: it cannot be cancelled.
    executed = await client.post(
        f"{MB}/preventive/unplanned",
        json={
            "companyId": org.company_ids[0],
            "siteIds": [org.site_ids[0]],
            "ruleIds": [org.rule_ids[0]],
            "signature": SIGNATURE,
            "provider": {"firstName": "A", "lastName": "B"},
        },
        headers=org.admin.headers,
    )
    r = await client.request(
        "DELETE", f"{RS}/{executed.json()['data']['id']}", headers=org.admin.headers
    )
    assert r.status_code == 409


async def test_information_email(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    planned = await plan(client, org)
    url = f"{RS}/{planned['id']}/emails/informations"
    r = await client.post(url, json={"email": "provider@example.org"}, headers=org.admin.headers)
    assert r.status_code == 204, r.text
    async with factory.db.reader() as s:
        rows = list(
            (
                await s.execute(
                    select(OutboxEmail).where(OutboxEmail.intervention_id == planned["id"])
                )
            ).scalars()
        )
    assert [e.recipient for e in rows] == ["provider@example.org"]
    assert str(planned["codePin"]) in rows[0].body
    assert "Site 0" in rows[0].body
    assert "2025-01-10T08:00:00.000Z" in rows[0].body
    for bad in ["not-an-email", "", "a@b", "x" * 250 + "@example.org"]:
        r = await client.post(url, json={"email": bad}, headers=org.admin.headers)
        assert r.status_code == 400, bad
        assert r.json()["errors"][0]["field"] == "email"
    assert (
        await client.post(url, json={"email": "p@example.org"}, headers=org.viewer.headers)
    ).status_code == 403
    other: Org = await factory.org()
    r = await client.post(url, json={"email": "p@example.org"}, headers=other.admin.headers)
    assert r.status_code == 404


async def test_decision_email_to_the_provider(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    executed = await client.post(
        f"{MB}/preventive/unplanned",
        json={
            "companyId": org.company_ids[0],
            "siteIds": [org.site_ids[0]],
            "ruleIds": [org.rule_ids[0]],
            "signature": SIGNATURE,
            "provider": {"firstName": "A", "lastName": "B", "email": "ab@provider.example"},
        },
        headers=org.admin.headers,
    )
    iid = executed.json()["data"]["id"]
    r = await client.patch(
        f"{RS}/{iid}/verify",
        json={"decision": 1, "decisionComment": "Fine"},
        headers=org.admin.headers,
    )
    assert r.status_code == 200
    async with factory.db.reader() as s:
        rows = list(
            (
                await s.execute(select(OutboxEmail).where(OutboxEmail.intervention_id == iid))
            ).scalars()
        )
    assert [(e.recipient, e.kind) for e in rows] == [
        ("ab@provider.example", "intervention.accepted")
    ]
    assert "Fine" in rows[0].body
