"""Company statements beyond the ones every resource has (``resource.Statements``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import bindparam, update

from interventions.db import Executor, Sql, table_of
from interventions.references.models import Company, CompanyContact
from interventions.references.repository import contains, equals

_COMPANY = table_of(Company).c
FILTERS = {"type_": equals(_COMPANY.type), "q": contains(_COMPANY.name)}

_CONTACTS = table_of(CompanyContact)
_ARCHIVE_CONTACTS = Sql(
    update(_CONTACTS)
    .where(
        _CONTACTS.c.organization_id == bindparam("organization_id"),
        _CONTACTS.c.company_id == bindparam("company_id"),
        _CONTACTS.c.archived_at.is_(None),
    )
    .values(archived_at=bindparam("now"))
)


async def archive_contacts(db: Executor, company: Any, now: dt.datetime) -> None:
    """The company's contacts: an archived provider cannot be assigned any more."""
    await db.execute(
        _ARCHIVE_CONTACTS, organization_id=company.organization_id, company_id=company.id, now=now
    )
