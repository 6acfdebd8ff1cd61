"""Company contact use cases: a contact belongs to a company of the organisation."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from interventions.auth.dependencies import Caller
from interventions.references import repository as refs
from interventions.references.contacts import repository
from interventions.references.contacts.schemas import (
    CompanyContactCreate,
    CompanyContactRead,
    CompanyContactUpdate,
)
from interventions.references.models import Company, CompanyContact
from interventions.references.resource import Resource, assign_given, new_row


async def _require_company(session: AsyncSession, caller: Caller, company_id: int) -> None:
    await refs.require_all(
        session, Company, caller.organization_id, [company_id], field="companyId", label="company"
    )


async def _insert(
    session: AsyncSession, caller: Caller, body: CompanyContactCreate
) -> CompanyContact:
    await _require_company(session, caller, body.company_id)
    contact: CompanyContact = new_row(CompanyContact, caller, body)
    return contact


async def _change(
    session: AsyncSession, caller: Caller, contact: CompanyContact, body: CompanyContactUpdate
) -> None:
    if body.company_id is not None:
        await _require_company(session, caller, body.company_id)
    assign_given(contact, body)


contacts: Resource[CompanyContactRead, CompanyContactCreate, CompanyContactUpdate] = Resource(
    model=CompanyContact,
    label="company contact",
    read=CompanyContactRead,
    filters=repository.FILTERS,
    insert=_insert,
    change=_change,
)
