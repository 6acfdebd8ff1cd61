"""Anomaly use cases. An anomaly is recorded open; its status is not the client's to set:
the curative interventions that repair it move it (``interventions.lifecycle``). Anomalies
are closed, never archived."""

from __future__ import annotations

from typing import Any

from interventions.auth.dependencies import Caller
from interventions.db import Executor, utcnow
from interventions.interventions.models import Intervention
from interventions.references import repository as refs
from interventions.references.anomalies import repository
from interventions.references.anomalies.schemas import AnomalyCreate, AnomalyRead, AnomalyUpdate
from interventions.references.models import Anomaly, Site
from interventions.references.resource import Resource, given_fields
from interventions.register.journal import Subject


async def _record(db: Executor, caller: Caller, body: AnomalyCreate) -> dict[str, Any]:
    org = caller.organization_id
    await refs.require_all(db, Site, org, [body.site_id], field="siteId", label="site")
    raised_by = body.raised_by_intervention_id
    if raised_by is not None and not await refs.existing(
        db, Intervention, org, [raised_by], active=False
    ):
        raise refs.unprocessable_ids("raisedByInterventionId", "intervention", [raised_by])
    now = utcnow()
    return {
        "organization_id": org,
        "site_id": body.site_id,
        "title": body.title,
        "description": body.description,
        "risk": body.risk,
        "status": 0,
        "raised_by_intervention_id": raised_by,
        "created_at": now,
        "updated_at": now,
    }


async def _change(
    db: Executor, caller: Caller, anomaly: Any, body: AnomalyUpdate
) -> dict[str, Any]:
    return {**given_fields(body), "updated_at": utcnow()}


anomalies: Resource[AnomalyRead, AnomalyCreate, AnomalyUpdate] = Resource(
    model=Anomaly,
    label="anomaly",
    read=AnomalyRead,
    filters=repository.FILTERS,
    insert=_record,
    change=_change,
    journal=Subject.ANOMALY,
)
