"""The whole path of issue 3, through HTTP, on both databases, with a real SMTP server:

routine → auto-created intervention → information e-mail → PIN check-in → execution with a
signature uploaded through its presignedUrl → notification → verification → e-mails received.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import httpx

from interventions.config import Settings
from interventions.interventions import planner
from interventions.notifications.relay import relay_once
from tests.factories import Org
from tests.helpers import MB, RS
from tests.smtp_server import SmtpServer

JPEG = b"\xff\xd8\xff\xe0" + bytes(252)


async def test_routine_to_verified_with_mail(
    client: httpx.AsyncClient,
    factory: Any,
    settings: Settings,
    smtp: SmtpServer,
    tmp_path: Path,
) -> None:
    org: Org = await factory.org()
    admin, manager = org.admin.headers, org.manager.headers

    # 1. A routine that plans itself: every Monday at 09:00, two weeks ahead.
    monday = dt.datetime.now(dt.UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    routine = await client.post(
        "/routines/v1/rs",
        json={
            "name": "Weekly fire alarm check",
            "siteRuleIds": [org.site_rule[(org.site_ids[1], org.rule_ids[0])]],
            "rrule": "FREQ=WEEKLY",
            "dtstart": monday.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "durationMinutes": 60,
            "horizonDays": 14,
            "autoCreateEnabled": True,
            "assignedCompanyContactId": org.contact_ids[0],
        },
        headers=admin,
    )
    assert routine.status_code == 201, routine.text
    routine_id = routine.json()["data"]["id"]

    # 2. The worker plans the occurrences; the web app finds them.
    assert await planner.plan_once(factory.db) >= 2
    listed = await client.get(f"{RS}?routineId={routine_id}&sort=scheduledStart", headers=admin)
    planned = listed.json()["data"]
    assert len(planned) >= 2
    first = planned[0]
    assert first["autoCreated"] is True
    assert first["status"] == 2
    assert first["companyId"] == org.company_ids[0]

    # 3. The provider gets the information (with the PIN) by e-mail.
    r = await client.post(
        f"{RS}/{first['id']}/emails/informations",
        json={"email": "tech@provider.example"},
        headers=admin,
    )
    assert r.status_code == 204

    # 4. On site: check in with the PIN, execute, upload the signature.
    r = await client.patch(
        f"{MB}/check-in",
        json={"interventionId": first["id"], "codePin": first["codePin"]},
        headers=manager,
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["status"] == 3
    r = await client.patch(
        f"{MB}/execute",
        json={
            "interventionId": first["id"],
            "firstName": "Tom",
            "lastName": "Tech",
            "email": "tech@provider.example",
            "providerActionComment": "Alarm tested on every floor",
            "comment": "Battery replaced",
            "signature": {"name": "tom.jpg", "mimeType": "image/jpeg", "size": len(JPEG)},
        },
        headers=manager,
    )
    assert r.status_code == 200, r.text
    executed = r.json()
    assert executed["data"]["status"] == 4
    put = await client.put(
        executed["presignedUrl"], content=JPEG, headers={"content-type": "image/jpeg"}
    )
    assert put.status_code == 200, put.text
    assert (await client.get(executed["data"]["imgSignature"], headers=admin)).content == JPEG

    # 5. The admin is notified, and verifies from the notification.
    notes = (await client.get("/notifications/v1/rs", headers=admin)).json()["data"]
    note = next(n for n in notes if n["interventionId"] == first["id"])
    assert note["readAt"] is None
    r = await client.patch(
        f"{RS}/{first['id']}/verify",
        json={"decision": 1, "decisionComment": "Good job", "notificationId": note["id"]},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["status"] == 5
    detail = (await client.get(f"{RS}/{first['id']}", headers=admin)).json()["data"]
    assert [h["action"] for h in detail["history"]] == [
        "auto-create",
        "information-email",
        "check-in",
        "execute",
        "verify",
    ]
    assert detail["actions"] == {
        "canBeUpdated": False,
        "canBeDeleted": False,
        "canBeExecuted": False,
        "canBeVerified": False,
    }
    notes = (await client.get("/notifications/v1/rs", headers=admin)).json()["data"]
    assert next(n for n in notes if n["id"] == note["id"])["readAt"] is not None

    # 6. The relay delivers the e-mails to the SMTP server.
    mail_settings = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": smtp.port})
    for _ in range(20):
        await relay_once(factory.db, mail_settings, relay_id="e2e")
        got = [r for r in smtp.mailbox.received if "tech@provider.example" in r.rcpt_tos]
        if len(got) >= 2:
            break
    subjects = sorted(str(r.message["Subject"]) for r in got)
    assert subjects == [
        f"Intervention {first['id']} was accepted",
        f"Intervention {first['id']}: information",
    ]
    info = next(r for r in got if "information" in str(r.message["Subject"]))
    assert str(first["codePin"]) in info.message.get_content()
    assert "Site 1" in info.message.get_content()
