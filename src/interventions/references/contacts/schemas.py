"""Company contact request and response bodies."""

from __future__ import annotations

from interventions.references.fields import IdField, NameField
from interventions.wire import DateTimeOut, Email, Id, Name, ReadModel, WireModel


class CompanyContactCreate(WireModel):
    company_id: Id
    name: Name
    email: Email | None = None


class CompanyContactUpdate(WireModel):
    """``null`` clears ``email``; ``companyId`` moves the contact to another company."""

    company_id: IdField = None
    name: NameField = None
    email: Email | None = None


class CompanyContactRead(ReadModel):
    id: int
    organization_id: int
    company_id: int
    name: str
    email: str | None
    archived_at: DateTimeOut | None
    created_at: DateTimeOut
