"""``/company-contacts/v1/rs``: the people of the organisation's providers."""

from __future__ import annotations

from interventions.references.contacts.schemas import CompanyContactCreate, CompanyContactUpdate
from interventions.references.contacts.service import contacts
from interventions.references.endpoints import (
    Operation,
    Operations,
    free_text,
    id_filter,
    resource_router,
)

router = resource_router(
    contacts,
    prefix="/company-contacts/v1/rs",
    tag="company contacts",
    path_id="companyContactId",
    bodies=(CompanyContactCreate, CompanyContactUpdate),
    filters={"company_id": id_filter("companyId", "Only this company's."), "q": free_text()},
    operations=Operations(
        list=Operation("listCompanyContacts", "List company contacts"),
        get=Operation("getCompanyContact", "Read one company contact"),
        create=Operation("createCompanyContact", "Create a company contact", errors=(422,)),
        update=Operation("updateCompanyContact", "Update a company contact", errors=(422,)),
        archive=Operation("archiveCompanyContact", "Archive a company contact"),
    ),
)
