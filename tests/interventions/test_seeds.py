"""Each seed page's own example request, checked member by member against the page."""

from __future__ import annotations

from typing import Any

import httpx

from tests.factories import Org
from tests.helpers import check_resource


async def test_000_create_curative(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    body = {
        "scheduledStart": "2024-12-01T12:34:56.000Z",
        "scheduledEnd": "2024-12-05T14:56:23.000Z",
        "anomalyIds": [org.anomaly_ids[0]],
        "creationStatus": 0,
        "description": "Description of the intervention",
        "assignedCompanyContactId": org.contact_ids[0],
        "assignedUserId": org.manager.user_id,
    }
    r = await client.post("/interventions/v2/rs/curative", json=body, headers=org.admin.headers)
    assert r.status_code == 201, r.text
    assert r.headers["content-type"] == "application/json"
    data = r.json()["data"]
    check_resource(data)
    assert data["type"] == 2
    assert data["status"] == 1
    assert data["creationStatus"] == 0
    assert data["description"] == "Description of the intervention"
    assert data["scheduledStart"] == "2024-12-01T12:34:56.000Z"
    assert data["scheduledEnd"] == "2024-12-05T14:56:23.000Z"
    assert data["actualStart"] is None
    assert data["actualEnd"] is None
    assert data["assignedCompanyContactId"] == org.contact_ids[0]
    assert data["companyId"] == org.company_ids[0]
    assert data["assignedProfileId"] == org.manager.profile_id
    assert data["assignedUserId"] == org.manager.user_id
    assert data["createdByUserId"] == org.admin.user_id
    assert data["organizationId"] == org.id
    assert data["anomalyIds"] == [org.anomaly_ids[0]]
    assert data["siteIds"] == [org.site_ids[0]]
    assert data["verifiedAt"] is None
    assert data["verifiedByUserId"] is None
    assert data["deletedAt"] is None
    assert data["archivedAt"] is None
    # The anomaly is now being repaired: a second curative on it is refused.
    again = await client.post("/interventions/v2/rs/curative", json=body, headers=org.admin.headers)
    assert again.status_code == 422
    assert again.json()["errors"][0]["field"] == "anomalyIds"


async def test_001_create_unplanned(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    body = {
        "companyId": org.company_ids[0],
        "siteIds": org.site_ids,
        "ruleIds": org.rule_ids,
        "signature": {"name": "example.jpg", "mimeType": "image/jpeg", "size": 1024},
        "provider": {
            "firstName": "Provider name",
            "lastName": "Provider name",
            "actionComment": "Action comment from the provider",
            "email": "example@mail.fr",
            "comment": "General comment from the provider",
        },
        "actualStart": "2024-12-01T12:34:56.000Z",
    }
    r = await client.post(
        "/interventions/v2/mb/preventive/unplanned", json=body, headers=org.manager.headers
    )
    assert r.status_code == 201, r.text
    payload = r.json()
    assert set(payload) == {"data", "presignedUrl"}
    data = payload["data"]
    check_resource(data)
    assert data["type"] == 1
    assert data["status"] == 4
    assert data["checkType"] == 2
    assert data["creationStatus"] == 2
    assert data["actualStart"] == "2024-12-01T12:34:56.000Z"
    assert data["scheduledStart"] == data["actualStart"]
    assert data["scheduledEnd"] == data["actualEnd"] is not None
    assert data["providerName"] == "Provider name Provider name"
    assert data["providerEmail"] == "example@mail.fr"
    assert data["providerActionComment"] == "Action comment from the provider"
    assert data["providerGeneralComment"] == "General comment from the provider"
    assert data["companyId"] == org.company_ids[0]
    assert data["siteIds"] == sorted(org.site_ids)
    assert data["ruleIds"] == sorted(org.rule_ids)
    assert len(data["siteRuleIds"]) == 9
    assert data["imgSignature"].startswith("/storage/v1/rs/files/")
    assert payload["presignedUrl"].startswith("http://testserver/storage/v1/uploads/")

    # The URL takes the bytes; the organisation can then download them.
    image = b"\xff\xd8\xff" + bytes(1021)
    put = await client.put(
        payload["presignedUrl"], content=image, headers={"content-type": "image/jpeg"}
    )
    assert put.status_code == 200, put.text
    got = await client.get(data["imgSignature"], headers=org.viewer.headers)
    assert got.status_code == 200
    assert got.content == image
    assert got.headers["content-type"] == "image/jpeg"

    # The admins and managers are told it awaits verification.
    notes = await client.get("/notifications/v1/rs", headers=org.admin.headers)
    assert [n["interventionId"] for n in notes.json()["data"]] == [data["id"]]


async def test_002_update_preventive(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    created = await client.post(
        "/interventions/v2/rs/preventive/routine",
        json={
            "scheduledStart": "2024-11-01T08:00:00.000Z",
            "scheduledEnd": "2024-11-01T10:00:00.000Z",
            "creationStatus": 0,
            "routineId": org.routine_id,
        },
        headers=org.admin.headers,
    )
    assert created.status_code == 201, created.text
    intervention_id = created.json()["data"]["id"]
    site_rules = [org.site_rule[(org.site_ids[1], r)] for r in org.rule_ids]
    body = {
        "description": "Description of the intervention",
        "scheduledStart": "2024-12-01T12:34:56.000Z",
        "scheduledEnd": "2024-12-05T14:56:23.000Z",
        "siteRuleIds": site_rules,
        "creationStatus": 1,
        "assignedCompanyContactId": org.contact_ids[0],
        "assignedProfileId": org.manager.profile_id,
        "sendUpdateEmailToCurrentAssignee": False,
        "previousAssigneeNotification": {
            "sendEmail": True,
            "reason": "The intervention details have changed.",
        },
    }
    r = await client.patch(
        f"/interventions/v2/rs/preventive/{intervention_id}",
        json=body,
        headers={
            **org.admin.headers,
            "Content-Type": "application/json",
            "X-Session-Token": org.admin.headers["x-session-token"],
        },
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    check_resource(data)
    assert data["id"] == intervention_id
    assert data["type"] == 1
    assert data["checkType"] == 1
    assert data["status"] == 2
    assert data["creationStatus"] == 1
    assert data["description"] == "Description of the intervention"
    assert data["scheduledStart"] == "2024-12-01T12:34:56.000Z"
    assert data["scheduledEnd"] == "2024-12-05T14:56:23.000Z"
    assert data["siteRuleIds"] == sorted(site_rules)
    assert data["siteIds"] == [org.site_ids[1]]
    assert data["assignedCompanyContactId"] == org.contact_ids[0]
    assert data["assignedProfileId"] == org.manager.profile_id
    assert data["assignedUserId"] == org.manager.user_id
    assert data["companyId"] == org.company_ids[0]
    assert data["routineId"] == org.routine_id


async def test_003_update_training(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    created = await client.post(
        "/interventions/v2/rs/training-exercise",
        json={
            "scheduledStart": "2024-11-01T08:00:00.000Z",
            "scheduledEnd": "2024-11-01T10:00:00.000Z",
            "ruleId": org.training_rule_id,
            "siteIds": [org.site_ids[0]],
            "creationStatus": 0,
        },
        headers=org.admin.headers,
    )
    assert created.status_code == 201, created.text
    intervention_id = created.json()["data"]["id"]
    body = {
        "description": "Description of the intervention",
        "scheduledStart": "2024-12-01T12:34:56.000Z",
        "scheduledEnd": "2024-12-05T14:56:23.000Z",
        "ruleId": org.training_rule_id,
        "siteIds": org.site_ids,
        "creationStatus": 1,
        "assignedCompanyContactId": org.contact_ids[1],
        "assignedUserId": org.admin.user_id,
        "validateIntervention": True,
    }
    r = await client.patch(
        f"/interventions/v2/rs/training-exercise/{intervention_id}",
        json=body,
        headers=org.manager.headers,
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    check_resource(data)
    assert data["type"] == 3
    assert data["status"] == 5  # validated
    assert data["verifiedByUserId"] == org.manager.user_id
    assert data["verifiedAt"] is not None
    assert data["description"] == "Description of the intervention"
    assert data["scheduledStart"] == "2024-12-01T12:34:56.000Z"
    assert data["scheduledEnd"] == "2024-12-05T14:56:23.000Z"
    assert data["ruleIds"] == [org.training_rule_id]
    assert data["siteIds"] == sorted(org.site_ids)
    assert data["assignedCompanyContactId"] == org.contact_ids[1]
    assert data["assignedUserId"] == org.admin.user_id
    assert data["assignedProfileId"] == org.admin.profile_id
    assert data["creationStatus"] == 1


async def _executed(client: httpx.AsyncClient, org: Org) -> int:
    """An unplanned check recorded by the admin: awaiting verification, managers notified."""
    created = await client.post(
        "/interventions/v2/mb/preventive/unplanned",
        json={
            "companyId": org.company_ids[0],
            "siteIds": [org.site_ids[0]],
            "ruleIds": [org.rule_ids[0]],
            "signature": {"name": "s.png", "mimeType": "image/png", "size": 10},
            "provider": {"firstName": "Ann", "lastName": "Lee"},
        },
        headers=org.admin.headers,
    )
    assert created.status_code == 201, created.text
    intervention_id: int = created.json()["data"]["id"]
    return intervention_id


async def test_004_verify(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    intervention_id = await _executed(client, org)
    notes = (await client.get("/notifications/v1/rs", headers=org.manager.headers)).json()["data"]
    notification_id = notes[0]["id"]
    assert notes[0]["readAt"] is None
    body = {
        "decisionComment": "Provider refused the intervention due to scheduling conflicts.",
        "decision": 2,
        "notificationId": notification_id,
    }
    r = await client.patch(
        f"/interventions/v2/rs/{intervention_id}/verify", json=body, headers=org.manager.headers
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    check_resource(data)
    assert data["status"] == 6  # rejected
    assert (
        data["decisionComment"] == "Provider refused the intervention due to scheduling conflicts."
    )
    assert data["verifiedByUserId"] == org.manager.user_id
    assert data["verifiedAt"] is not None
    notes = (await client.get("/notifications/v1/rs", headers=org.manager.headers)).json()["data"]
    assert notes[0]["readAt"] is not None
    # Verifying twice is a conflict.
    again = await client.patch(
        f"/interventions/v2/rs/{intervention_id}/verify",
        json={**body, "notificationId": None},
        headers=org.manager.headers,
    )
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"


async def test_verify_with_a_notification_already_read_keeps_its_first_read_time(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    ids = [await _executed(client, org) for _ in range(2)]
    notes = (await client.get("/notifications/v1/rs", headers=org.manager.headers)).json()["data"]
    note = notes[-1]["id"]
    first_read = None
    for intervention_id in ids:
        r = await client.patch(
            f"/interventions/v2/rs/{intervention_id}/verify",
            json={"decision": 1, "decisionComment": "ok", "notificationId": note},
            headers=org.manager.headers,
        )
        assert r.status_code == 200, r.text
        notes = (await client.get("/notifications/v1/rs", headers=org.manager.headers)).json()
        read_at = next(n for n in notes["data"] if n["id"] == note)["readAt"]
        assert read_at is not None
        first_read = first_read or read_at
        assert read_at == first_read
    # Someone else's notification: 422, and the intervention stays to verify.
    third_id = await _executed(client, org)
    admin_notes = (await client.get("/notifications/v1/rs", headers=org.admin.headers)).json()
    r = await client.patch(
        f"/interventions/v2/rs/{third_id}/verify",
        json={
            "decision": 1,
            "decisionComment": "ok",
            "notificationId": admin_notes["data"][0]["id"],
        },
        headers=org.manager.headers,
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "notificationId"
    still = await client.get(f"/interventions/v2/rs/{third_id}", headers=org.manager.headers)
    assert still.json()["data"]["status"] == 4
