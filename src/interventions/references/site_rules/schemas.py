"""Site rule request and response bodies."""

from __future__ import annotations

from interventions.references.fields import IdField
from interventions.wire import DateTimeOut, Id, ReadModel, WireModel


class SiteRuleCreate(WireModel):
    """A rule applied to a site, both of the organisation; one site rule per pair."""

    site_id: Id
    rule_id: Id


class SiteRuleUpdate(WireModel):
    site_id: IdField = None
    rule_id: IdField = None


class SiteRuleRead(ReadModel):
    id: int
    organization_id: int
    site_id: int
    rule_id: int
    archived_at: DateTimeOut | None
    created_at: DateTimeOut
