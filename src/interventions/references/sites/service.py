"""Site use cases: the shared ones; archiving a site archives its site rules."""

from __future__ import annotations

from interventions.references.models import Site
from interventions.references.resource import Resource
from interventions.references.sites import repository
from interventions.references.sites.schemas import SiteCreate, SiteRead, SiteUpdate

sites: Resource[SiteRead, SiteCreate, SiteUpdate] = Resource(
    model=Site,
    label="site",
    read=SiteRead,
    filters=repository.FILTERS,
    cascade=repository.archive_site_rules,
)
