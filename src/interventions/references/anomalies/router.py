"""``/anomalies/v1/rs``: the organisation's anomalies (no ``DELETE``: they are not archived)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from interventions.references.anomalies.schemas import AnomalyCreate, AnomalyUpdate
from interventions.references.anomalies.service import anomalies
from interventions.references.endpoints import (
    Operation,
    Operations,
    free_text,
    id_filter,
    resource_router,
)

StatusFilter = Annotated[
    int | None, Query(ge=0, le=2, description="0 open · 1 in repair · 2 resolved")
]

router = resource_router(
    anomalies,
    prefix="/anomalies/v1/rs",
    tag="anomalies",
    path_id="anomalyId",
    bodies=(AnomalyCreate, AnomalyUpdate),
    filters={
        "site_id": id_filter("siteId", "Only this site's."),
        "status": StatusFilter,
        "q": free_text(),
    },
    operations=Operations(
        list=Operation("listAnomalies", "List anomalies"),
        get=Operation("getAnomaly", "Read one anomaly"),
        create=Operation("createAnomaly", "Record an anomaly (open)", errors=(422,)),
        update=Operation("updateAnomaly", "Update an anomaly's title, description or risk"),
    ),
)
