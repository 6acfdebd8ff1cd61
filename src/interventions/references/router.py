"""``/sites/v1/rs``, ``/rules/v1/rs``…: the web application's reference data endpoints.

One router per resource family, each with list, read, create, update and archive (anomalies
have no archived state: their status follows the curative interventions). Archived rows are
missing from lists and reads unless ``includeArchived=true``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from interventions.auth.dependencies import Caller, CurrentCaller, CurrentWriter
from interventions.db import RequestSession
from interventions.errors import Forbidden
from interventions.openapi import errors_for
from interventions.organizations import service as invitations
from interventions.organizations.schemas import InvitationCreate, InvitationRead
from interventions.references import service
from interventions.references.schemas import (
    AnomalyCreate,
    AnomalyRead,
    AnomalyUpdate,
    CompanyContactCreate,
    CompanyContactRead,
    CompanyContactUpdate,
    CompanyCreate,
    CompanyRead,
    CompanyUpdate,
    ProfileRead,
    ProfileUpdate,
    RoutineCreate,
    RoutineRead,
    RoutineUpdate,
    RuleCreate,
    RuleRead,
    RuleUpdate,
    SiteCreate,
    SiteRead,
    SiteRuleCreate,
    SiteRuleRead,
    SiteRuleUpdate,
    SiteUpdate,
)
from interventions.wire import MAX_SAFE_INTEGER, Envelope, ListEnvelope, Pagination, Storable

T = TypeVar("T")

# One transaction per request, shared with the caller's authentication.
WriteSession = RequestSession
ReadSession = RequestSession

CREATE_ERRORS = (400, 403, 413, 415)
UPDATE_ERRORS = (*CREATE_ERRORS, 404)
ARCHIVE_ERRORS = (400, 403, 404)


async def current_admin(caller: CurrentCaller) -> Caller:
    """Profiles are the organisation's membership: only its admins change them."""
    if caller.role != "admin":
        raise Forbidden(f"The role '{caller.role}' may not change profiles.")
    return caller


CurrentAdmin = Annotated[Caller, Depends(current_admin)]


@dataclass(frozen=True)
class PageQuery:
    page: int
    page_size: int

    @property
    def wanted(self) -> service.Page:
        return service.Page(page=self.page, size=self.page_size)


def _page_query(
    page: Annotated[int, Query(ge=1, le=1_000_000, description="From 1.")] = 1,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=100)] = 20,
) -> PageQuery:
    return PageQuery(page=page, page_size=page_size)


def listed(query: PageQuery, found: tuple[list[T], int]) -> ListEnvelope[T]:
    items, total = found
    return ListEnvelope(
        data=items,
        total_count=total,
        pagination=Pagination(page=query.page, page_size=query.page_size),
    )


Paging = Annotated[PageQuery, Depends(_page_query)]
IncludeArchived = Annotated[bool, Query(alias="includeArchived", description="Also archived rows.")]
FreeText = Annotated[
    Annotated[str, Storable] | None,
    Query(min_length=1, max_length=250, description="Case-insensitive part of the name."),
]
_RANGE = {"ge": -MAX_SAFE_INTEGER, "le": MAX_SAFE_INTEGER}
SiteFilter = Annotated[int | None, Query(alias="siteId", description="Only this site's.", **_RANGE)]
RuleFilter = Annotated[int | None, Query(alias="ruleId", description="Only this rule's.", **_RANGE)]
SiteRuleFilter = Annotated[
    int | None, Query(alias="siteRuleId", description="Only those planning it.", **_RANGE)
]
CompanyFilter = Annotated[
    int | None, Query(alias="companyId", description="Only this company's.", **_RANGE)
]

SiteId = Annotated[
    int, Path(alias="siteId", description="Unique identifier of the site.", **_RANGE)
]
RuleId = Annotated[
    int, Path(alias="ruleId", description="Unique identifier of the rule.", **_RANGE)
]
SiteRuleId = Annotated[
    int, Path(alias="siteRuleId", description="Unique identifier of the site rule.", **_RANGE)
]
RoutineId = Annotated[
    int, Path(alias="routineId", description="Unique identifier of the routine.", **_RANGE)
]
CompanyId = Annotated[
    int, Path(alias="companyId", description="Unique identifier of the company.", **_RANGE)
]
CompanyContactId = Annotated[
    int,
    Path(
        alias="companyContactId",
        description="Unique identifier of the company contact.",
        **_RANGE,
    ),
]
AnomalyId = Annotated[
    int, Path(alias="anomalyId", description="Unique identifier of the anomaly.", **_RANGE)
]
ProfileId = Annotated[
    int, Path(alias="profileId", description="Unique identifier of the profile.", **_RANGE)
]


def _archived() -> Response:
    return Response(status_code=204)


# --- sites --------------------------------------------------------------------------------------

sites = APIRouter(prefix="/sites/v1/rs", tags=["sites"])


@sites.get(
    "",
    operation_id="listSites",
    response_model=ListEnvelope[SiteRead],
    responses=errors_for(400),
    summary="List sites",
)
async def list_sites(
    caller: CurrentCaller,
    session: ReadSession,
    paging: Paging,
    q: FreeText = None,
    include_archived: IncludeArchived = False,
) -> ListEnvelope[SiteRead]:
    found = await service.list_sites(
        session, caller, paging.wanted, q=q, include_archived=include_archived
    )
    return listed(paging, found)


@sites.get(
    "/{siteId}",
    operation_id="getSite",
    response_model=Envelope[SiteRead],
    responses=errors_for(400, 404),
    summary="Read one site",
)
async def get_site(
    site_id: SiteId,
    caller: CurrentCaller,
    session: ReadSession,
    include_archived: IncludeArchived = False,
) -> Envelope[SiteRead]:
    return Envelope(
        data=await service.get_site(session, caller, site_id, include_archived=include_archived)
    )


@sites.post(
    "",
    operation_id="createSite",
    status_code=201,
    response_model=Envelope[SiteRead],
    responses=errors_for(*CREATE_ERRORS),
    summary="Create a site",
)
async def create_site(
    body: SiteCreate, caller: CurrentWriter, session: WriteSession
) -> Envelope[SiteRead]:
    return Envelope(data=await service.create_site(session, caller, body))


@sites.patch(
    "/{siteId}",
    operation_id="updateSite",
    response_model=Envelope[SiteRead],
    responses=errors_for(*UPDATE_ERRORS),
    summary="Update a site",
)
async def update_site(
    site_id: SiteId, body: SiteUpdate, caller: CurrentWriter, session: WriteSession
) -> Envelope[SiteRead]:
    return Envelope(data=await service.update_site(session, caller, site_id, body))


@sites.delete(
    "/{siteId}",
    operation_id="archiveSite",
    status_code=204,
    responses=errors_for(*ARCHIVE_ERRORS),
    summary="Archive a site and its site rules",
)
async def archive_site(site_id: SiteId, caller: CurrentWriter, session: WriteSession) -> Response:
    await service.archive_site(session, caller, site_id)
    return _archived()


# --- rules --------------------------------------------------------------------------------------

rules = APIRouter(prefix="/rules/v1/rs", tags=["rules"])


@rules.get(
    "",
    operation_id="listRules",
    response_model=ListEnvelope[RuleRead],
    responses=errors_for(400),
    summary="List rules",
)
async def list_rules(
    caller: CurrentCaller,
    session: ReadSession,
    paging: Paging,
    type_: Annotated[
        int | None,
        Query(alias="type", ge=1, le=2, description="1 check/maintenance · 2 training"),
    ] = None,
    q: FreeText = None,
    include_archived: IncludeArchived = False,
) -> ListEnvelope[RuleRead]:
    found = await service.list_rules(
        session, caller, paging.wanted, type_=type_, q=q, include_archived=include_archived
    )
    return listed(paging, found)


@rules.get(
    "/{ruleId}",
    operation_id="getRule",
    response_model=Envelope[RuleRead],
    responses=errors_for(400, 404),
    summary="Read one rule",
)
async def get_rule(
    rule_id: RuleId,
    caller: CurrentCaller,
    session: ReadSession,
    include_archived: IncludeArchived = False,
) -> Envelope[RuleRead]:
    return Envelope(
        data=await service.get_rule(session, caller, rule_id, include_archived=include_archived)
    )


@rules.post(
    "",
    operation_id="createRule",
    status_code=201,
    response_model=Envelope[RuleRead],
    responses=errors_for(*CREATE_ERRORS),
    summary="Create a rule",
)
async def create_rule(
    body: RuleCreate, caller: CurrentWriter, session: WriteSession
) -> Envelope[RuleRead]:
    return Envelope(data=await service.create_rule(session, caller, body))


@rules.patch(
    "/{ruleId}",
    operation_id="updateRule",
    response_model=Envelope[RuleRead],
    responses=errors_for(*UPDATE_ERRORS),
    summary="Update a rule",
)
async def update_rule(
    rule_id: RuleId, body: RuleUpdate, caller: CurrentWriter, session: WriteSession
) -> Envelope[RuleRead]:
    return Envelope(data=await service.update_rule(session, caller, rule_id, body))


@rules.delete(
    "/{ruleId}",
    operation_id="archiveRule",
    status_code=204,
    responses=errors_for(*ARCHIVE_ERRORS),
    summary="Archive a rule and its site rules",
)
async def archive_rule(rule_id: RuleId, caller: CurrentWriter, session: WriteSession) -> Response:
    await service.archive_rule(session, caller, rule_id)
    return _archived()


# --- site rules ---------------------------------------------------------------------------------

site_rules = APIRouter(prefix="/site-rules/v1/rs", tags=["site rules"])


@site_rules.get(
    "",
    operation_id="listSiteRules",
    response_model=ListEnvelope[SiteRuleRead],
    responses=errors_for(400),
    summary="List site rules",
)
async def list_site_rules(
    caller: CurrentCaller,
    session: ReadSession,
    paging: Paging,
    site_id: SiteFilter = None,
    rule_id: RuleFilter = None,
    include_archived: IncludeArchived = False,
) -> ListEnvelope[SiteRuleRead]:
    found = await service.list_site_rules(
        session,
        caller,
        paging.wanted,
        site_id=site_id,
        rule_id=rule_id,
        include_archived=include_archived,
    )
    return listed(paging, found)


@site_rules.get(
    "/{siteRuleId}",
    operation_id="getSiteRule",
    response_model=Envelope[SiteRuleRead],
    responses=errors_for(400, 404),
    summary="Read one site rule",
)
async def get_site_rule(
    site_rule_id: SiteRuleId,
    caller: CurrentCaller,
    session: ReadSession,
    include_archived: IncludeArchived = False,
) -> Envelope[SiteRuleRead]:
    return Envelope(
        data=await service.get_site_rule(
            session, caller, site_rule_id, include_archived=include_archived
        )
    )


@site_rules.post(
    "",
    operation_id="createSiteRule",
    status_code=201,
    response_model=Envelope[SiteRuleRead],
    responses=errors_for(*CREATE_ERRORS, 409, 422),
    summary="Apply a rule to a site",
)
async def create_site_rule(
    body: SiteRuleCreate, caller: CurrentWriter, session: WriteSession
) -> Envelope[SiteRuleRead]:
    return Envelope(data=await service.create_site_rule(session, caller, body))


@site_rules.patch(
    "/{siteRuleId}",
    operation_id="updateSiteRule",
    response_model=Envelope[SiteRuleRead],
    responses=errors_for(*UPDATE_ERRORS, 409, 422),
    summary="Update a site rule",
)
async def update_site_rule(
    site_rule_id: SiteRuleId, body: SiteRuleUpdate, caller: CurrentWriter, session: WriteSession
) -> Envelope[SiteRuleRead]:
    return Envelope(data=await service.update_site_rule(session, caller, site_rule_id, body))


@site_rules.delete(
    "/{siteRuleId}",
    operation_id="archiveSiteRule",
    status_code=204,
    responses=errors_for(*ARCHIVE_ERRORS),
    summary="Archive a site rule",
)
async def archive_site_rule(
    site_rule_id: SiteRuleId, caller: CurrentWriter, session: WriteSession
) -> Response:
    await service.archive_site_rule(session, caller, site_rule_id)
    return _archived()


# --- routines -----------------------------------------------------------------------------------

routines = APIRouter(prefix="/routines/v1/rs", tags=["routines"])


@routines.get(
    "",
    operation_id="listRoutines",
    response_model=ListEnvelope[RoutineRead],
    responses=errors_for(400),
    summary="List routines",
)
async def list_routines(
    caller: CurrentCaller,
    session: ReadSession,
    paging: Paging,
    site_rule_id: SiteRuleFilter = None,
    q: FreeText = None,
    include_archived: IncludeArchived = False,
) -> ListEnvelope[RoutineRead]:
    found = await service.list_routines(
        session,
        caller,
        paging.wanted,
        q=q,
        site_rule_id=site_rule_id,
        include_archived=include_archived,
    )
    return listed(paging, found)


@routines.get(
    "/{routineId}",
    operation_id="getRoutine",
    response_model=Envelope[RoutineRead],
    responses=errors_for(400, 404),
    summary="Read one routine",
)
async def get_routine(
    routine_id: RoutineId,
    caller: CurrentCaller,
    session: ReadSession,
    include_archived: IncludeArchived = False,
) -> Envelope[RoutineRead]:
    return Envelope(
        data=await service.get_routine(
            session, caller, routine_id, include_archived=include_archived
        )
    )


@routines.post(
    "",
    operation_id="createRoutine",
    status_code=201,
    response_model=Envelope[RoutineRead],
    responses=errors_for(*CREATE_ERRORS, 422),
    summary="Create a routine",
)
async def create_routine(
    body: RoutineCreate, caller: CurrentWriter, session: WriteSession
) -> Envelope[RoutineRead]:
    return Envelope(data=await service.create_routine(session, caller, body))


@routines.patch(
    "/{routineId}",
    operation_id="updateRoutine",
    response_model=Envelope[RoutineRead],
    responses=errors_for(*UPDATE_ERRORS, 422),
    summary="Update a routine",
)
async def update_routine(
    routine_id: RoutineId, body: RoutineUpdate, caller: CurrentWriter, session: WriteSession
) -> Envelope[RoutineRead]:
    return Envelope(data=await service.update_routine(session, caller, routine_id, body))


@routines.delete(
    "/{routineId}",
    operation_id="archiveRoutine",
    status_code=204,
    responses=errors_for(*ARCHIVE_ERRORS),
    summary="Archive a routine: it plans nothing more",
)
async def archive_routine(
    routine_id: RoutineId, caller: CurrentWriter, session: WriteSession
) -> Response:
    await service.archive_routine(session, caller, routine_id)
    return _archived()


# --- companies ----------------------------------------------------------------------------------

companies = APIRouter(prefix="/companies/v1/rs", tags=["companies"])


@companies.get(
    "",
    operation_id="listCompanies",
    response_model=ListEnvelope[CompanyRead],
    responses=errors_for(400),
    summary="List companies (providers)",
)
async def list_companies(
    caller: CurrentCaller,
    session: ReadSession,
    paging: Paging,
    type_: Annotated[
        int | None,
        Query(
            alias="type",
            ge=1,
            le=3,
            description="1 verification body · 2 works/maintenance · 3 training body",
        ),
    ] = None,
    q: FreeText = None,
    include_archived: IncludeArchived = False,
) -> ListEnvelope[CompanyRead]:
    found = await service.list_companies(
        session, caller, paging.wanted, type_=type_, q=q, include_archived=include_archived
    )
    return listed(paging, found)


@companies.get(
    "/{companyId}",
    operation_id="getCompany",
    response_model=Envelope[CompanyRead],
    responses=errors_for(400, 404),
    summary="Read one company",
)
async def get_company(
    company_id: CompanyId,
    caller: CurrentCaller,
    session: ReadSession,
    include_archived: IncludeArchived = False,
) -> Envelope[CompanyRead]:
    return Envelope(
        data=await service.get_company(
            session, caller, company_id, include_archived=include_archived
        )
    )


@companies.post(
    "",
    operation_id="createCompany",
    status_code=201,
    response_model=Envelope[CompanyRead],
    responses=errors_for(*CREATE_ERRORS),
    summary="Create a company",
)
async def create_company(
    body: CompanyCreate, caller: CurrentWriter, session: WriteSession
) -> Envelope[CompanyRead]:
    return Envelope(data=await service.create_company(session, caller, body))


@companies.patch(
    "/{companyId}",
    operation_id="updateCompany",
    response_model=Envelope[CompanyRead],
    responses=errors_for(*UPDATE_ERRORS),
    summary="Update a company",
)
async def update_company(
    company_id: CompanyId, body: CompanyUpdate, caller: CurrentWriter, session: WriteSession
) -> Envelope[CompanyRead]:
    return Envelope(data=await service.update_company(session, caller, company_id, body))


@companies.delete(
    "/{companyId}",
    operation_id="archiveCompany",
    status_code=204,
    responses=errors_for(*ARCHIVE_ERRORS),
    summary="Archive a company and its contacts",
)
async def archive_company(
    company_id: CompanyId, caller: CurrentWriter, session: WriteSession
) -> Response:
    await service.archive_company(session, caller, company_id)
    return _archived()


# --- company contacts ---------------------------------------------------------------------------

company_contacts = APIRouter(prefix="/company-contacts/v1/rs", tags=["company contacts"])


@company_contacts.get(
    "",
    operation_id="listCompanyContacts",
    response_model=ListEnvelope[CompanyContactRead],
    responses=errors_for(400),
    summary="List company contacts",
)
async def list_company_contacts(
    caller: CurrentCaller,
    session: ReadSession,
    paging: Paging,
    company_id: CompanyFilter = None,
    q: FreeText = None,
    include_archived: IncludeArchived = False,
) -> ListEnvelope[CompanyContactRead]:
    found = await service.list_company_contacts(
        session,
        caller,
        paging.wanted,
        company_id=company_id,
        q=q,
        include_archived=include_archived,
    )
    return listed(paging, found)


@company_contacts.get(
    "/{companyContactId}",
    operation_id="getCompanyContact",
    response_model=Envelope[CompanyContactRead],
    responses=errors_for(400, 404),
    summary="Read one company contact",
)
async def get_company_contact(
    contact_id: CompanyContactId,
    caller: CurrentCaller,
    session: ReadSession,
    include_archived: IncludeArchived = False,
) -> Envelope[CompanyContactRead]:
    return Envelope(
        data=await service.get_company_contact(
            session, caller, contact_id, include_archived=include_archived
        )
    )


@company_contacts.post(
    "",
    operation_id="createCompanyContact",
    status_code=201,
    response_model=Envelope[CompanyContactRead],
    responses=errors_for(*CREATE_ERRORS, 422),
    summary="Create a company contact",
)
async def create_company_contact(
    body: CompanyContactCreate, caller: CurrentWriter, session: WriteSession
) -> Envelope[CompanyContactRead]:
    return Envelope(data=await service.create_company_contact(session, caller, body))


@company_contacts.patch(
    "/{companyContactId}",
    operation_id="updateCompanyContact",
    response_model=Envelope[CompanyContactRead],
    responses=errors_for(*UPDATE_ERRORS, 422),
    summary="Update a company contact",
)
async def update_company_contact(
    contact_id: CompanyContactId,
    body: CompanyContactUpdate,
    caller: CurrentWriter,
    session: WriteSession,
) -> Envelope[CompanyContactRead]:
    return Envelope(data=await service.update_company_contact(session, caller, contact_id, body))


@company_contacts.delete(
    "/{companyContactId}",
    operation_id="archiveCompanyContact",
    status_code=204,
    responses=errors_for(*ARCHIVE_ERRORS),
    summary="Archive a company contact",
)
async def archive_company_contact(
    contact_id: CompanyContactId, caller: CurrentWriter, session: WriteSession
) -> Response:
    await service.archive_company_contact(session, caller, contact_id)
    return _archived()


# --- anomalies ----------------------------------------------------------------------------------

anomalies = APIRouter(prefix="/anomalies/v1/rs", tags=["anomalies"])


@anomalies.get(
    "",
    operation_id="listAnomalies",
    response_model=ListEnvelope[AnomalyRead],
    responses=errors_for(400),
    summary="List anomalies",
)
async def list_anomalies(
    caller: CurrentCaller,
    session: ReadSession,
    paging: Paging,
    site_id: SiteFilter = None,
    status: Annotated[
        int | None, Query(ge=0, le=2, description="0 open · 1 in repair · 2 resolved")
    ] = None,
    q: FreeText = None,
) -> ListEnvelope[AnomalyRead]:
    found = await service.list_anomalies(
        session, caller, paging.wanted, site_id=site_id, status=status, q=q
    )
    return listed(paging, found)


@anomalies.get(
    "/{anomalyId}",
    operation_id="getAnomaly",
    response_model=Envelope[AnomalyRead],
    responses=errors_for(400, 404),
    summary="Read one anomaly",
)
async def get_anomaly(
    anomaly_id: AnomalyId, caller: CurrentCaller, session: ReadSession
) -> Envelope[AnomalyRead]:
    return Envelope(data=await service.get_anomaly(session, caller, anomaly_id))


@anomalies.post(
    "",
    operation_id="createAnomaly",
    status_code=201,
    response_model=Envelope[AnomalyRead],
    responses=errors_for(*CREATE_ERRORS, 422),
    summary="Record an anomaly (open)",
)
async def create_anomaly(
    body: AnomalyCreate, caller: CurrentWriter, session: WriteSession
) -> Envelope[AnomalyRead]:
    return Envelope(data=await service.create_anomaly(session, caller, body))


@anomalies.patch(
    "/{anomalyId}",
    operation_id="updateAnomaly",
    response_model=Envelope[AnomalyRead],
    responses=errors_for(*UPDATE_ERRORS),
    summary="Update an anomaly's title, description or risk",
)
async def update_anomaly(
    anomaly_id: AnomalyId, body: AnomalyUpdate, caller: CurrentWriter, session: WriteSession
) -> Envelope[AnomalyRead]:
    return Envelope(data=await service.update_anomaly(session, caller, anomaly_id, body))


# --- profiles -----------------------------------------------------------------------------------

profiles = APIRouter(prefix="/profiles/v1/rs", tags=["profiles"])


@profiles.get(
    "",
    operation_id="listProfiles",
    response_model=ListEnvelope[ProfileRead],
    responses=errors_for(400),
    summary="List the organisation's members",
)
async def list_profiles(
    caller: CurrentCaller,
    session: ReadSession,
    paging: Paging,
    role: Annotated[
        Literal["admin", "manager", "viewer"] | None, Query(description="Only this role.")
    ] = None,
    q: Annotated[
        Annotated[str, Storable] | None,
        Query(
            min_length=1,
            max_length=250,
            description="Case-insensitive part of the e-mail, first or last name.",
        ),
    ] = None,
    include_archived: IncludeArchived = False,
) -> ListEnvelope[ProfileRead]:
    found = await service.list_profiles(
        session, caller, paging.wanted, role=role, q=q, include_archived=include_archived
    )
    return listed(paging, found)


@profiles.get(
    "/{profileId}",
    operation_id="getProfile",
    response_model=Envelope[ProfileRead],
    responses=errors_for(400, 404),
    summary="Read one member",
)
async def get_profile(
    profile_id: ProfileId,
    caller: CurrentCaller,
    session: ReadSession,
    include_archived: IncludeArchived = False,
) -> Envelope[ProfileRead]:
    return Envelope(
        data=await service.get_profile(
            session, caller, profile_id, include_archived=include_archived
        )
    )


@profiles.post(
    "",
    operation_id="inviteProfile",
    status_code=202,
    response_model=Envelope[InvitationRead],
    responses=errors_for(*CREATE_ERRORS, 409, 429),
    summary="Invite a member (admins only): e-mails an invitation, nobody joins until accepted",
    description=(
        "Creates no profile: the invited person accepts with the e-mailed token "
        "(`/invitations/v1/rs/accept`…), and the profile is created then. The answer is the "
        "same whether the e-mail has an account or not; a member of this organisation is a "
        "409. A new invitation replaces the e-mail's pending one."
    ),
)
async def invite_profile(
    body: InvitationCreate, caller: CurrentAdmin, session: WriteSession, request: Request
) -> Envelope[InvitationRead]:
    invitation = await invitations.invite(
        session,
        request.app.state.settings,
        caller,
        body,
        base_url=request.app.state.settings.public_url or str(request.base_url),
    )
    return Envelope(data=invitation)


@profiles.patch(
    "/{profileId}",
    operation_id="updateProfile",
    response_model=Envelope[ProfileRead],
    responses=errors_for(*UPDATE_ERRORS, 409),
    summary="Change a member's role (admins only)",
)
async def update_profile(
    profile_id: ProfileId, body: ProfileUpdate, caller: CurrentAdmin, session: WriteSession
) -> Envelope[ProfileRead]:
    return Envelope(data=await service.update_profile(session, caller, profile_id, body))


@profiles.delete(
    "/{profileId}",
    operation_id="archiveProfile",
    status_code=204,
    responses=errors_for(*ARCHIVE_ERRORS, 409),
    summary="Archive a member (admins only): their access ends at once",
)
async def archive_profile(
    profile_id: ProfileId, caller: CurrentAdmin, session: WriteSession
) -> Response:
    await service.archive_profile(session, caller, profile_id)
    return _archived()


routers = [sites, rules, site_rules, routines, companies, company_contacts, anomalies, profiles]
