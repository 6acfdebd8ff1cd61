"""The requests of each scenario, in Python, for the in-process measurement (``measure.py``).

They mirror ``lua/common.lua``'s builders exactly (same paths, same bodies): what is counted
in-process is what wrk sends.
"""

from __future__ import annotations

import json
from typing import Any

WRITES = ("curative", "unplanned", "preventive", "training", "verify")
SCENARIOS = ("get", *WRITES, "mixed")
# The mixed workload: 20 reads and one of each write in every 25 requests (80 % reads).
MIXED = tuple("get" if k % 5 != 4 else WRITES[k // 5] for k in range(25))


def _day(n: int) -> str:
    return f"2025-{1 + (n // 28) % 12:02d}-{1 + n % 28:02d}"


def build(name: str, item: dict[str, Any], n: int) -> tuple[str, str, dict[str, Any] | None]:
    """(method, path, JSON body) of request number ``n`` of scenario ``name`` on ``item``."""
    if name == "get":
        return "GET", f"/interventions/v2/rs/{item['id']}", None
    if name == "curative":
        return (
            "POST",
            "/interventions/v2/rs/curative",
            {
                "scheduledStart": "2024-12-01T12:34:56.000Z",
                "scheduledEnd": "2024-12-05T14:56:23.000Z",
                "anomalyIds": item["a"],
                "creationStatus": 0,
                "description": "Description of the intervention",
                "assignedCompanyContactId": item["contact"],
                "assignedUserId": item["profile"],
            },
        )
    if name == "unplanned":
        return (
            "POST",
            "/interventions/v2/mb/preventive/unplanned",
            {
                "companyId": item["company"],
                "siteIds": item["sites"],
                "ruleIds": item["rules"],
                "signature": {"name": "example.jpg", "mimeType": "image/jpeg", "size": 1024},
                "provider": {
                    "firstName": "Provider name",
                    "lastName": "Provider name",
                    "actionComment": "Action comment from the provider",
                    "email": "example@mail.fr",
                    "comment": "General comment from the provider",
                },
                "actualStart": "2024-12-01T12:34:56.000Z",
            },
        )
    if name == "preventive":
        day = _day(n)
        return (
            "PATCH",
            f"/interventions/v2/rs/preventive/{item['id']}",
            {
                "description": f"Description of the intervention {n}",
                "scheduledStart": f"{day}T08:00:00.000Z",
                "scheduledEnd": f"{day}T12:00:00.000Z",
                "siteRuleIds": item["sr"],
                "creationStatus": 1,
                "assignedCompanyContactId": item["contact"],
                "assignedProfileId": item["profile"],
                "sendUpdateEmailToCurrentAssignee": False,
                "previousAssigneeNotification": {
                    "sendEmail": True,
                    "reason": "The intervention details have changed.",
                },
            },
        )
    if name == "training":
        day = _day(n)
        return (
            "PATCH",
            f"/interventions/v2/rs/training-exercise/{item['id']}",
            {
                "description": f"Description of the intervention {n}",
                "scheduledStart": f"{day}T08:00:00.000Z",
                "scheduledEnd": f"{day}T12:00:00.000Z",
                "ruleId": item["rule"],
                "siteIds": item["sites"],
                "creationStatus": 1,
                "assignedCompanyContactId": item["contact"],
                "assignedUserId": item["profile"],
                "validateIntervention": False,
            },
        )
    if name == "verify":
        return (
            "PATCH",
            f"/interventions/v2/rs/{item['id']}/verify",
            {
                "decisionComment": "Provider refused the intervention due to scheduling conflicts.",
                "decision": 2,
                "notificationId": item["ntf"],
            },
        )
    raise ValueError(f"unknown scenario {name!r}")


def encode(body: dict[str, Any] | None) -> bytes | None:
    return None if body is None else json.dumps(body, separators=(",", ":")).encode()
