"""``/routines/v1/rs``: the organisation's routines."""

from __future__ import annotations

from interventions.references.endpoints import (
    Operation,
    Operations,
    free_text,
    id_filter,
    resource_router,
)
from interventions.references.routines.schemas import RoutineCreate, RoutineUpdate
from interventions.references.routines.service import routines

router = resource_router(
    routines,
    prefix="/routines/v1/rs",
    tag="routines",
    path_id="routineId",
    bodies=(RoutineCreate, RoutineUpdate),
    filters={
        "site_rule_id": id_filter("siteRuleId", "Only those planning it."),
        "q": free_text(),
    },
    operations=Operations(
        list=Operation("listRoutines", "List routines"),
        get=Operation("getRoutine", "Read one routine"),
        create=Operation("createRoutine", "Create a routine", errors=(422,)),
        update=Operation("updateRoutine", "Update a routine", errors=(422,)),
        archive=Operation("archiveRoutine", "Archive a routine: it plans nothing more"),
    ),
)
