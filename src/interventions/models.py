"""Every mapped class, imported once so that ``Base.metadata`` knows the whole schema."""

from interventions.auth.models import AuthSession, Profile, RateLimitHit, User
from interventions.db import Base
from interventions.integrations.provider_links.models import ProviderLink
from interventions.interventions.models import (
    Intervention,
    InterventionAnomaly,
    InterventionRule,
    InterventionSite,
    InterventionSiteRule,
)
from interventions.notifications.models import Notification, OutboxEmail
from interventions.references.models import (
    Anomaly,
    Company,
    CompanyContact,
    Organization,
    Routine,
    RoutineSiteRule,
    Rule,
    Site,
    SiteRule,
)
from interventions.register.models import JournalEntry, JournalHead
from interventions.storage.models import StoredFile

__all__ = [
    "Anomaly",
    "AuthSession",
    "Base",
    "Company",
    "CompanyContact",
    "Intervention",
    "InterventionAnomaly",
    "InterventionRule",
    "InterventionSite",
    "InterventionSiteRule",
    "JournalEntry",
    "JournalHead",
    "Notification",
    "Organization",
    "OutboxEmail",
    "Profile",
    "ProviderLink",
    "RateLimitHit",
    "Routine",
    "RoutineSiteRule",
    "Rule",
    "Site",
    "SiteRule",
    "StoredFile",
    "User",
]
