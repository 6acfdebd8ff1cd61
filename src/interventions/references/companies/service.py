"""Company use cases: the shared ones; archiving a company archives its contacts."""

from __future__ import annotations

from interventions.references.companies import repository
from interventions.references.companies.schemas import CompanyCreate, CompanyRead, CompanyUpdate
from interventions.references.models import Company
from interventions.references.resource import Resource

companies: Resource[CompanyRead, CompanyCreate, CompanyUpdate] = Resource(
    model=Company,
    label="company",
    read=CompanyRead,
    filters=repository.FILTERS,
    cascade=repository.archive_contacts,
)
