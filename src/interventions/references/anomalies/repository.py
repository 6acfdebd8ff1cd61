"""Anomaly statements beyond the ones every resource has (``resource.Statements``)."""

from __future__ import annotations

from interventions.db import table_of
from interventions.references.models import Anomaly
from interventions.references.repository import contains, equals

_ANOMALY = table_of(Anomaly).c
FILTERS = {
    "site_id": equals(_ANOMALY.site_id),
    "status": equals(_ANOMALY.status),
    "q": contains(_ANOMALY.title),
}
