"""``/companies/v1/rs``: the organisation's providers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from interventions.references.companies.schemas import CompanyCreate, CompanyUpdate
from interventions.references.companies.service import companies
from interventions.references.endpoints import Operation, Operations, free_text, resource_router

TypeFilter = Annotated[
    int | None,
    Query(
        alias="type",
        ge=1,
        le=3,
        description="1 verification body · 2 works/maintenance · 3 training body",
    ),
]

router = resource_router(
    companies,
    prefix="/companies/v1/rs",
    tag="companies",
    path_id="companyId",
    bodies=(CompanyCreate, CompanyUpdate),
    filters={"type_": TypeFilter, "q": free_text()},
    operations=Operations(
        list=Operation("listCompanies", "List companies (providers)"),
        get=Operation("getCompany", "Read one company"),
        create=Operation("createCompany", "Create a company"),
        update=Operation("updateCompany", "Update a company"),
        archive=Operation("archiveCompany", "Archive a company and its contacts"),
    ),
)
