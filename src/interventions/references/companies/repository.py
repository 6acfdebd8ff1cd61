"""Company statements beyond the shared organisation-scoped ones."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from interventions.references.models import Company, CompanyContact
from interventions.references.repository import archive_where, contains, equals

FILTERS = {"type_": equals(Company.type), "q": contains(Company.name)}


async def archive_contacts(session: AsyncSession, company: Company, now: dt.datetime) -> None:
    """The company's contacts: an archived provider cannot be assigned any more."""
    await archive_where(
        session,
        CompanyContact,
        company.organization_id,
        CompanyContact.company_id == company.id,
        now=now,
    )
