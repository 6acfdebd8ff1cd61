"""Every mapped class, imported once so that ``Base.metadata`` knows the whole schema."""

from interventions.auth.models import AuthSession, Profile, RateLimitHit, User
from interventions.db import Base
from interventions.idempotency.models import IdempotencyKey
from interventions.integrations.models import CalendarFeed
from interventions.integrations.provider_links.models import ProviderLink
from interventions.integrations.webhooks.models import WebhookDelivery, WebhookEndpoint
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
from interventions.register.models import (
    JournalCheckpoint,
    JournalEntry,
    JournalHead,
    RegisterKey,
)
from interventions.storage.models import StoredFile

__all__ = [
    "Anomaly",
    "AuthSession",
    "Base",
    "CalendarFeed",
    "Company",
    "CompanyContact",
    "IdempotencyKey",
    "Intervention",
    "InterventionAnomaly",
    "InterventionRule",
    "InterventionSite",
    "InterventionSiteRule",
    "JournalCheckpoint",
    "JournalEntry",
    "JournalHead",
    "Notification",
    "Organization",
    "OutboxEmail",
    "Profile",
    "ProviderLink",
    "RateLimitHit",
    "RegisterKey",
    "Routine",
    "RoutineSiteRule",
    "Rule",
    "Site",
    "SiteRule",
    "StoredFile",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
]
