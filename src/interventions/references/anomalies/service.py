"""Anomaly use cases. An anomaly is recorded open; its status is not the client's to set:
the curative interventions that repair it move it (``interventions.lifecycle``). Anomalies
are closed, never archived."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from interventions.auth.dependencies import Caller
from interventions.db import utcnow
from interventions.references import repository as refs
from interventions.references.anomalies import repository
from interventions.references.anomalies.schemas import AnomalyCreate, AnomalyRead, AnomalyUpdate
from interventions.references.models import Anomaly, Site
from interventions.references.resource import Resource, assign_given


async def _record(session: AsyncSession, caller: Caller, body: AnomalyCreate) -> Anomaly:
    org = caller.organization_id
    await refs.require_all(session, Site, org, [body.site_id], field="siteId", label="site")
    now = utcnow()
    return Anomaly(
        organization_id=org,
        site_id=body.site_id,
        title=body.title,
        description=body.description,
        risk=body.risk,
        status=0,
        created_at=now,
        updated_at=now,
    )


async def _change(
    session: AsyncSession, caller: Caller, anomaly: Anomaly, body: AnomalyUpdate
) -> None:
    assign_given(anomaly, body)
    anomaly.updated_at = utcnow()


anomalies: Resource[AnomalyRead, AnomalyCreate, AnomalyUpdate] = Resource(
    model=Anomaly,
    label="anomaly",
    read=AnomalyRead,
    filters=repository.FILTERS,
    insert=_record,
    change=_change,
)
