"""Company contact statements beyond the shared organisation-scoped ones (``require_contact``,
which interventions use too, is there)."""

from __future__ import annotations

from interventions.references.models import CompanyContact
from interventions.references.repository import contains, equals

FILTERS = {"company_id": equals(CompanyContact.company_id), "q": contains(CompanyContact.name)}
