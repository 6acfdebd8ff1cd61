"""Anomaly statements beyond the shared organisation-scoped ones."""

from __future__ import annotations

from interventions.references.models import Anomaly
from interventions.references.repository import contains, equals

FILTERS = {
    "site_id": equals(Anomaly.site_id),
    "status": equals(Anomaly.status),
    "q": contains(Anomaly.title),
}
