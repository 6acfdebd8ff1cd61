"""Company contact use cases: a contact belongs to a company of the organisation."""

from __future__ import annotations

from typing import Any

from interventions.auth.dependencies import Caller
from interventions.db import Executor
from interventions.references import repository as refs
from interventions.references.contacts import repository
from interventions.references.contacts.schemas import (
    CompanyContactCreate,
    CompanyContactRead,
    CompanyContactUpdate,
)
from interventions.references.models import Company, CompanyContact
from interventions.references.resource import Resource, given_fields, new_row


async def _require_company(db: Executor, caller: Caller, company_id: int) -> None:
    await refs.require_all(
        db, Company, caller.organization_id, [company_id], field="companyId", label="company"
    )


async def _insert(db: Executor, caller: Caller, body: CompanyContactCreate) -> dict[str, Any]:
    await _require_company(db, caller, body.company_id)
    return new_row(caller, body)


async def _change(
    db: Executor, caller: Caller, contact: Any, body: CompanyContactUpdate
) -> dict[str, Any]:
    if body.company_id is not None:
        await _require_company(db, caller, body.company_id)
    return given_fields(body)


contacts: Resource[CompanyContactRead, CompanyContactCreate, CompanyContactUpdate] = Resource(
    model=CompanyContact,
    label="company contact",
    read=CompanyContactRead,
    filters=repository.FILTERS,
    insert=_insert,
    change=_change,
)
