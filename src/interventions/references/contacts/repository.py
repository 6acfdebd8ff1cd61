"""Company contact statements beyond the ones every resource has (``resource.Statements``;
``require_contact``, which interventions use too, is in ``references.repository``)."""

from __future__ import annotations

from interventions.db import table_of
from interventions.references.models import CompanyContact
from interventions.references.repository import contains, equals

_CONTACT = table_of(CompanyContact).c
FILTERS = {"company_id": equals(_CONTACT.company_id), "q": contains(_CONTACT.name)}
