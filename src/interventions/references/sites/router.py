"""``/sites/v1/rs``: the organisation's sites."""

from __future__ import annotations

from interventions.references.endpoints import Operation, Operations, free_text, resource_router
from interventions.references.sites.schemas import SiteCreate, SiteUpdate
from interventions.references.sites.service import sites

router = resource_router(
    sites,
    prefix="/sites/v1/rs",
    tag="sites",
    path_id="siteId",
    bodies=(SiteCreate, SiteUpdate),
    filters={"q": free_text()},
    operations=Operations(
        list=Operation("listSites", "List sites"),
        get=Operation("getSite", "Read one site"),
        create=Operation("createSite", "Create a site"),
        update=Operation("updateSite", "Update a site"),
        archive=Operation("archiveSite", "Archive a site and its site rules"),
    ),
)
