"""``/site-rules/v1/rs``: the rules applied to the organisation's sites."""

from __future__ import annotations

from interventions.references.endpoints import Operation, Operations, id_filter, resource_router
from interventions.references.site_rules.schemas import SiteRuleCreate, SiteRuleUpdate
from interventions.references.site_rules.service import site_rules

router = resource_router(
    site_rules,
    prefix="/site-rules/v1/rs",
    tag="site rules",
    path_id="siteRuleId",
    bodies=(SiteRuleCreate, SiteRuleUpdate),
    filters={
        "site_id": id_filter("siteId", "Only this site's."),
        "rule_id": id_filter("ruleId", "Only this rule's."),
    },
    operations=Operations(
        list=Operation("listSiteRules", "List site rules"),
        get=Operation("getSiteRule", "Read one site rule"),
        create=Operation("createSiteRule", "Apply a rule to a site", errors=(409, 422)),
        update=Operation("updateSiteRule", "Update a site rule", errors=(409, 422)),
        archive=Operation("archiveSiteRule", "Archive a site rule"),
    ),
)
