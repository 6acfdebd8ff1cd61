"""Reference data use cases for the web app: sites, rules, site rules, routines, companies,
company contacts, anomalies and profiles (members join by invitation: ``organizations``).
Services validate, change rows and flush; the request commits. Nothing here writes
intervention history: that belongs to interventions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, TypeVar

from anyio import to_thread
from pydantic import BaseModel
from sqlalchemy import or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from interventions.auth.dependencies import Caller
from interventions.auth.models import Profile, User
from interventions.db import utcnow
from interventions.errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from interventions.interventions.repository import profile_users
from interventions.references import recurrence
from interventions.references import repository as refs
from interventions.references.models import (
    Anomaly,
    Company,
    CompanyContact,
    Routine,
    Rule,
    Site,
    SiteRule,
)
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

ReadT = TypeVar("ReadT", bound=BaseModel)


@dataclass(frozen=True)
class Page:
    """Which page of a list: ``page`` from 1, ``size`` rows per page."""

    page: int
    size: int


async def _listed(
    session: AsyncSession, stmt: Any, order: Any, page: Page, read: type[ReadT]
) -> tuple[list[ReadT], int]:
    rows, total = await refs.page_of(
        session, stmt.order_by(order), page=page.page, page_size=page.size
    )
    return [read.model_validate(row) for row in rows], total


async def _flush_unique(session: AsyncSession, detail: str) -> None:
    """Flush; a unique constraint another request won meanwhile is a 409, not a 500."""
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(detail) from exc


# --- sites --------------------------------------------------------------------------------------


async def list_sites(
    session: AsyncSession,
    caller: Caller,
    page: Page,
    *,
    q: str | None = None,
    include_archived: bool = False,
) -> tuple[list[SiteRead], int]:
    stmt = refs.readable(Site, caller.organization_id, include_archived=include_archived)
    if q:
        stmt = stmt.where(Site.name.icontains(q, autoescape=True))
    return await _listed(session, stmt, Site.id, page, SiteRead)


async def get_site(
    session: AsyncSession, caller: Caller, site_id: int, *, include_archived: bool = False
) -> SiteRead:
    site = await refs.get_row(
        session,
        Site,
        caller.organization_id,
        site_id,
        label="site",
        include_archived=include_archived,
    )
    return SiteRead.model_validate(site)


async def create_site(session: AsyncSession, caller: Caller, body: SiteCreate) -> SiteRead:
    site = Site(organization_id=caller.organization_id, name=body.name, created_at=utcnow())
    session.add(site)
    await session.flush()
    return SiteRead.model_validate(site)


async def update_site(
    session: AsyncSession, caller: Caller, site_id: int, body: SiteUpdate
) -> SiteRead:
    site = await refs.get_row(
        session, Site, caller.organization_id, site_id, label="site", for_update=True
    )
    if body.name is not None:
        site.name = body.name
    await session.flush()
    return SiteRead.model_validate(site)


async def archive_site(session: AsyncSession, caller: Caller, site_id: int) -> None:
    """The site and its site rules: none of them can be referenced any more."""
    site = await refs.get_row(
        session, Site, caller.organization_id, site_id, label="site", for_update=True
    )
    now = utcnow()
    site.archived_at = now
    await refs.archive_where(
        session, SiteRule, caller.organization_id, SiteRule.site_id == site.id, now=now
    )
    await session.flush()


# --- rules --------------------------------------------------------------------------------------


async def list_rules(
    session: AsyncSession,
    caller: Caller,
    page: Page,
    *,
    type_: int | None = None,
    q: str | None = None,
    include_archived: bool = False,
) -> tuple[list[RuleRead], int]:
    stmt = refs.readable(Rule, caller.organization_id, include_archived=include_archived)
    if type_ is not None:
        stmt = stmt.where(Rule.type == type_)
    if q:
        stmt = stmt.where(Rule.name.icontains(q, autoescape=True))
    return await _listed(session, stmt, Rule.id, page, RuleRead)


async def get_rule(
    session: AsyncSession, caller: Caller, rule_id: int, *, include_archived: bool = False
) -> RuleRead:
    rule = await refs.get_row(
        session,
        Rule,
        caller.organization_id,
        rule_id,
        label="rule",
        include_archived=include_archived,
    )
    return RuleRead.model_validate(rule)


async def create_rule(session: AsyncSession, caller: Caller, body: RuleCreate) -> RuleRead:
    rule = Rule(
        organization_id=caller.organization_id,
        name=body.name,
        type=body.type,
        created_at=utcnow(),
    )
    session.add(rule)
    await session.flush()
    return RuleRead.model_validate(rule)


async def update_rule(
    session: AsyncSession, caller: Caller, rule_id: int, body: RuleUpdate
) -> RuleRead:
    rule = await refs.get_row(
        session, Rule, caller.organization_id, rule_id, label="rule", for_update=True
    )
    if body.name is not None:
        rule.name = body.name
    if body.type is not None:
        rule.type = body.type
    await session.flush()
    return RuleRead.model_validate(rule)


async def archive_rule(session: AsyncSession, caller: Caller, rule_id: int) -> None:
    """The rule and its site rules."""
    rule = await refs.get_row(
        session, Rule, caller.organization_id, rule_id, label="rule", for_update=True
    )
    now = utcnow()
    rule.archived_at = now
    await refs.archive_where(
        session, SiteRule, caller.organization_id, SiteRule.rule_id == rule.id, now=now
    )
    await session.flush()


# --- site rules ---------------------------------------------------------------------------------


async def list_site_rules(
    session: AsyncSession,
    caller: Caller,
    page: Page,
    *,
    site_id: int | None = None,
    rule_id: int | None = None,
    include_archived: bool = False,
) -> tuple[list[SiteRuleRead], int]:
    stmt = refs.readable(SiteRule, caller.organization_id, include_archived=include_archived)
    if site_id is not None:
        stmt = stmt.where(SiteRule.site_id == site_id)
    if rule_id is not None:
        stmt = stmt.where(SiteRule.rule_id == rule_id)
    return await _listed(session, stmt, SiteRule.id, page, SiteRuleRead)


async def get_site_rule(
    session: AsyncSession, caller: Caller, site_rule_id: int, *, include_archived: bool = False
) -> SiteRuleRead:
    site_rule = await refs.get_row(
        session,
        SiteRule,
        caller.organization_id,
        site_rule_id,
        label="site rule",
        include_archived=include_archived,
    )
    return SiteRuleRead.model_validate(site_rule)


def _pair_taken(site_id: int, rule_id: int, site_rule: SiteRule) -> Conflict:
    state = "an archived site rule" if site_rule.archived_at is not None else "site rule"
    return Conflict(
        f"Site {site_id} already carries rule {rule_id}: {state} {site_rule.id}.",
        errors=[{"field": "ruleId", "message": f"Already applied to site {site_id}."}],
    )


async def create_site_rule(
    session: AsyncSession, caller: Caller, body: SiteRuleCreate
) -> SiteRuleRead:
    """Apply a rule to a site. Re-applying an archived pair brings its site rule back."""
    org = caller.organization_id
    await refs.require_all(session, Site, org, [body.site_id], field="siteId", label="site")
    await refs.require_all(session, Rule, org, [body.rule_id], field="ruleId", label="rule")
    site_rule = await refs.site_rule_of_pair(session, body.site_id, body.rule_id)
    if site_rule is not None and site_rule.archived_at is None:
        raise _pair_taken(body.site_id, body.rule_id, site_rule)
    if site_rule is not None:
        site_rule.archived_at = None
    else:
        site_rule = SiteRule(
            organization_id=org, site_id=body.site_id, rule_id=body.rule_id, created_at=utcnow()
        )
        session.add(site_rule)
    await _flush_unique(session, f"Site {body.site_id} already carries rule {body.rule_id}.")
    return SiteRuleRead.model_validate(site_rule)


async def update_site_rule(
    session: AsyncSession, caller: Caller, site_rule_id: int, body: SiteRuleUpdate
) -> SiteRuleRead:
    org = caller.organization_id
    site_rule = await refs.get_row(
        session, SiteRule, org, site_rule_id, label="site rule", for_update=True
    )
    if body.site_id is not None:
        await refs.require_all(session, Site, org, [body.site_id], field="siteId", label="site")
    if body.rule_id is not None:
        await refs.require_all(session, Rule, org, [body.rule_id], field="ruleId", label="rule")
    site_id = body.site_id if body.site_id is not None else site_rule.site_id
    rule_id = body.rule_id if body.rule_id is not None else site_rule.rule_id
    if (site_id, rule_id) != (site_rule.site_id, site_rule.rule_id):
        other = await refs.site_rule_of_pair(session, site_id, rule_id)
        if other is not None:
            raise _pair_taken(site_id, rule_id, other)
        if await refs.site_rule_recorded(session, site_rule.id):
            # The register must keep saying where and against what each check was made.
            raise Conflict(
                f"Site rule {site_rule.id} is named by interventions: its site and rule stay. "
                "Archive it and apply the rule to the other site instead."
            )
        site_rule.site_id = site_id
        site_rule.rule_id = rule_id
    await _flush_unique(session, f"Site {site_id} already carries rule {rule_id}.")
    return SiteRuleRead.model_validate(site_rule)


async def archive_site_rule(session: AsyncSession, caller: Caller, site_rule_id: int) -> None:
    site_rule = await refs.get_row(
        session,
        SiteRule,
        caller.organization_id,
        site_rule_id,
        label="site rule",
        for_update=True,
    )
    site_rule.archived_at = utcnow()
    await session.flush()


# --- routines -----------------------------------------------------------------------------------


async def _routine_reads(session: AsyncSession, routines: list[Routine]) -> list[RoutineRead]:
    """Wire form of routines: one statement for all their site rules, one for the users of
    their assignees."""
    site_rules = await refs.site_rule_ids_of_routines(session, [r.id for r in routines])
    users = await profile_users(session, (r.assigned_profile_id for r in routines))
    return [
        RoutineRead(
            id=r.id,
            organization_id=r.organization_id,
            name=r.name,
            site_rule_ids=site_rules[r.id],
            rrule=r.rrule,
            dtstart=r.dtstart,
            duration_minutes=r.duration_minutes,
            horizon_days=r.horizon_days,
            auto_create_enabled=r.auto_create_enabled,
            assigned_profile_id=r.assigned_profile_id,
            assigned_user_id=users.get(r.assigned_profile_id) if r.assigned_profile_id else None,
            assigned_company_contact_id=r.assigned_company_contact_id,
            archived_at=r.archived_at,
            created_at=r.created_at,
        )
        for r in routines
    ]


async def _checked_rrule(text: str, dtstart: dt.datetime | None, field: str) -> str:
    """The normalised RRULE, else 400 on ``field``. Off the event loop: a pathological rule
    can take a noticeable fraction of a second to expand."""
    try:
        return await to_thread.run_sync(recurrence.validate, text, dtstart)
    except recurrence.InvalidRecurrence as exc:
        raise BadRequest(
            f"The RRULE {exc}.", errors=[{"field": field, "message": f"The RRULE {exc}."}]
        ) from exc


async def _check_routine_references(
    session: AsyncSession,
    caller: Caller,
    body: RoutineCreate | RoutineUpdate,
) -> tuple[bool, int | None]:
    """Site rules, assignee profile and contact of the organisation (not archived), else 422.
    Returns whether an assignee was given, and its profile id."""
    org = caller.organization_id
    if body.site_rule_ids is not None:
        await refs.require_all(
            session, SiteRule, org, body.site_rule_ids, field="siteRuleIds", label="site rule"
        )
    given, profile = await refs.assignee_profile(
        session,
        org,
        body.model_fields_set,
        user_id=body.assigned_user_id,
        profile_id=body.assigned_profile_id,
    )
    if body.assigned_company_contact_id is not None:
        await refs.require_contact(
            session, org, body.assigned_company_contact_id, field="assignedCompanyContactId"
        )
    return given, profile.id if profile is not None else None


def _check_auto_create(auto_create_enabled: bool, rrule: str | None) -> None:
    if auto_create_enabled and rrule is None:
        raise Unprocessable(
            "A routine without an RRULE cannot plan by itself.",
            errors=[{"field": "autoCreateEnabled", "message": "Needs an rrule."}],
        )


async def list_routines(
    session: AsyncSession,
    caller: Caller,
    page: Page,
    *,
    q: str | None = None,
    site_rule_id: int | None = None,
    include_archived: bool = False,
) -> tuple[list[RoutineRead], int]:
    stmt = refs.readable(Routine, caller.organization_id, include_archived=include_archived)
    if q:
        stmt = stmt.where(Routine.name.icontains(q, autoescape=True))
    if site_rule_id is not None:
        stmt = stmt.where(Routine.id.in_(refs.routines_of_site_rule(site_rule_id)))
    rows, total = await refs.page_of(
        session, stmt.order_by(Routine.id), page=page.page, page_size=page.size
    )
    return await _routine_reads(session, rows), total


async def get_routine(
    session: AsyncSession, caller: Caller, routine_id: int, *, include_archived: bool = False
) -> RoutineRead:
    routine = await refs.get_row(
        session,
        Routine,
        caller.organization_id,
        routine_id,
        label="routine",
        include_archived=include_archived,
    )
    return (await _routine_reads(session, [routine]))[0]


async def create_routine(session: AsyncSession, caller: Caller, body: RoutineCreate) -> RoutineRead:
    # Whole seconds: occurrences fall on the second the client sees, not a microsecond after.
    dtstart = body.dtstart or utcnow().replace(microsecond=0)
    rrule = await _checked_rrule(body.rrule, dtstart, "rrule") if body.rrule else None
    _, assignee = await _check_routine_references(session, caller, body)
    _check_auto_create(body.auto_create_enabled, rrule)
    routine = Routine(
        organization_id=caller.organization_id,
        name=body.name,
        rrule=rrule,
        dtstart=dtstart,
        duration_minutes=body.duration_minutes,
        horizon_days=body.horizon_days,
        auto_create_enabled=body.auto_create_enabled,
        assigned_profile_id=assignee,
        assigned_company_contact_id=body.assigned_company_contact_id,
        created_at=utcnow(),
    )
    session.add(routine)
    await session.flush()
    await refs.replace_routine_site_rules(session, routine, body.site_rule_ids)
    return (await _routine_reads(session, [routine]))[0]


async def update_routine(
    session: AsyncSession, caller: Caller, routine_id: int, body: RoutineUpdate
) -> RoutineRead:
    routine = await refs.get_row(
        session, Routine, caller.organization_id, routine_id, label="routine", for_update=True
    )
    fields = body.model_fields_set
    rrule = body.rrule if "rrule" in fields else routine.rrule
    dtstart = body.dtstart if body.dtstart is not None else routine.dtstart
    if rrule is not None and ("rrule" in fields or body.dtstart is not None):
        # A new DTSTART can make the same rule never occur (an UNTIL before it). Without one,
        # the planner starts from the routine's creation: so does the check.
        rrule = await _checked_rrule(
            rrule,
            dtstart or routine.created_at,
            "rrule" if "rrule" in fields else "dtstart",
        )
    assignee_given, assignee = await _check_routine_references(session, caller, body)
    auto_create = (
        body.auto_create_enabled
        if body.auto_create_enabled is not None
        else routine.auto_create_enabled
    )
    _check_auto_create(auto_create, rrule)

    if body.name is not None:
        routine.name = body.name
    routine.rrule = rrule
    routine.dtstart = dtstart
    if body.duration_minutes is not None:
        routine.duration_minutes = body.duration_minutes
    if body.horizon_days is not None:
        routine.horizon_days = body.horizon_days
    routine.auto_create_enabled = auto_create
    if assignee_given:
        routine.assigned_profile_id = assignee
    if "assigned_company_contact_id" in fields:
        routine.assigned_company_contact_id = body.assigned_company_contact_id
    await session.flush()
    if body.site_rule_ids is not None:
        await refs.replace_routine_site_rules(session, routine, body.site_rule_ids)
    return (await _routine_reads(session, [routine]))[0]


async def archive_routine(session: AsyncSession, caller: Caller, routine_id: int) -> None:
    """An archived routine plans nothing more; its interventions stay."""
    routine = await refs.get_row(
        session, Routine, caller.organization_id, routine_id, label="routine", for_update=True
    )
    routine.archived_at = utcnow()
    await session.flush()


# --- companies ----------------------------------------------------------------------------------


async def list_companies(
    session: AsyncSession,
    caller: Caller,
    page: Page,
    *,
    type_: int | None = None,
    q: str | None = None,
    include_archived: bool = False,
) -> tuple[list[CompanyRead], int]:
    stmt = refs.readable(Company, caller.organization_id, include_archived=include_archived)
    if type_ is not None:
        stmt = stmt.where(Company.type == type_)
    if q:
        stmt = stmt.where(Company.name.icontains(q, autoescape=True))
    return await _listed(session, stmt, Company.id, page, CompanyRead)


async def get_company(
    session: AsyncSession, caller: Caller, company_id: int, *, include_archived: bool = False
) -> CompanyRead:
    company = await refs.get_row(
        session,
        Company,
        caller.organization_id,
        company_id,
        label="company",
        include_archived=include_archived,
    )
    return CompanyRead.model_validate(company)


async def create_company(session: AsyncSession, caller: Caller, body: CompanyCreate) -> CompanyRead:
    company = Company(
        organization_id=caller.organization_id,
        name=body.name,
        type=body.type,
        email=body.email,
        created_at=utcnow(),
    )
    session.add(company)
    await session.flush()
    return CompanyRead.model_validate(company)


async def update_company(
    session: AsyncSession, caller: Caller, company_id: int, body: CompanyUpdate
) -> CompanyRead:
    company = await refs.get_row(
        session, Company, caller.organization_id, company_id, label="company", for_update=True
    )
    if body.name is not None:
        company.name = body.name
    if body.type is not None:
        company.type = body.type
    if "email" in body.model_fields_set:
        company.email = body.email
    await session.flush()
    return CompanyRead.model_validate(company)


async def archive_company(session: AsyncSession, caller: Caller, company_id: int) -> None:
    """The company and its contacts: an archived provider cannot be assigned any more."""
    company = await refs.get_row(
        session, Company, caller.organization_id, company_id, label="company", for_update=True
    )
    now = utcnow()
    company.archived_at = now
    await refs.archive_where(
        session,
        CompanyContact,
        caller.organization_id,
        CompanyContact.company_id == company.id,
        now=now,
    )
    await session.flush()


# --- company contacts ---------------------------------------------------------------------------


async def list_company_contacts(
    session: AsyncSession,
    caller: Caller,
    page: Page,
    *,
    company_id: int | None = None,
    q: str | None = None,
    include_archived: bool = False,
) -> tuple[list[CompanyContactRead], int]:
    stmt = refs.readable(CompanyContact, caller.organization_id, include_archived=include_archived)
    if company_id is not None:
        stmt = stmt.where(CompanyContact.company_id == company_id)
    if q:
        stmt = stmt.where(CompanyContact.name.icontains(q, autoescape=True))
    return await _listed(session, stmt, CompanyContact.id, page, CompanyContactRead)


async def get_company_contact(
    session: AsyncSession, caller: Caller, contact_id: int, *, include_archived: bool = False
) -> CompanyContactRead:
    contact = await refs.get_row(
        session,
        CompanyContact,
        caller.organization_id,
        contact_id,
        label="company contact",
        include_archived=include_archived,
    )
    return CompanyContactRead.model_validate(contact)


async def create_company_contact(
    session: AsyncSession, caller: Caller, body: CompanyContactCreate
) -> CompanyContactRead:
    org = caller.organization_id
    await refs.require_all(
        session, Company, org, [body.company_id], field="companyId", label="company"
    )
    contact = CompanyContact(
        organization_id=org,
        company_id=body.company_id,
        name=body.name,
        email=body.email,
        created_at=utcnow(),
    )
    session.add(contact)
    await session.flush()
    return CompanyContactRead.model_validate(contact)


async def update_company_contact(
    session: AsyncSession, caller: Caller, contact_id: int, body: CompanyContactUpdate
) -> CompanyContactRead:
    org = caller.organization_id
    contact = await refs.get_row(
        session, CompanyContact, org, contact_id, label="company contact", for_update=True
    )
    if body.company_id is not None:
        await refs.require_all(
            session, Company, org, [body.company_id], field="companyId", label="company"
        )
        contact.company_id = body.company_id
    if body.name is not None:
        contact.name = body.name
    if "email" in body.model_fields_set:
        contact.email = body.email
    await session.flush()
    return CompanyContactRead.model_validate(contact)


async def archive_company_contact(session: AsyncSession, caller: Caller, contact_id: int) -> None:
    contact = await refs.get_row(
        session,
        CompanyContact,
        caller.organization_id,
        contact_id,
        label="company contact",
        for_update=True,
    )
    contact.archived_at = utcnow()
    await session.flush()


# --- anomalies ----------------------------------------------------------------------------------


async def list_anomalies(
    session: AsyncSession,
    caller: Caller,
    page: Page,
    *,
    site_id: int | None = None,
    status: int | None = None,
    q: str | None = None,
) -> tuple[list[AnomalyRead], int]:
    stmt = refs.readable(Anomaly, caller.organization_id)
    if site_id is not None:
        stmt = stmt.where(Anomaly.site_id == site_id)
    if status is not None:
        stmt = stmt.where(Anomaly.status == status)
    if q:
        stmt = stmt.where(Anomaly.title.icontains(q, autoescape=True))
    return await _listed(session, stmt, Anomaly.id, page, AnomalyRead)


async def get_anomaly(session: AsyncSession, caller: Caller, anomaly_id: int) -> AnomalyRead:
    anomaly = await refs.get_row(
        session, Anomaly, caller.organization_id, anomaly_id, label="anomaly"
    )
    return AnomalyRead.model_validate(anomaly)


async def create_anomaly(session: AsyncSession, caller: Caller, body: AnomalyCreate) -> AnomalyRead:
    org = caller.organization_id
    await refs.require_all(session, Site, org, [body.site_id], field="siteId", label="site")
    now = utcnow()
    anomaly = Anomaly(
        organization_id=org,
        site_id=body.site_id,
        title=body.title,
        description=body.description,
        risk=body.risk,
        status=0,
        created_at=now,
        updated_at=now,
    )
    session.add(anomaly)
    await session.flush()
    return AnomalyRead.model_validate(anomaly)


async def update_anomaly(
    session: AsyncSession, caller: Caller, anomaly_id: int, body: AnomalyUpdate
) -> AnomalyRead:
    anomaly = await refs.get_row(
        session, Anomaly, caller.organization_id, anomaly_id, label="anomaly", for_update=True
    )
    if body.title is not None:
        anomaly.title = body.title
    if "description" in body.model_fields_set:
        anomaly.description = body.description
    if body.risk is not None:
        anomaly.risk = body.risk
    anomaly.updated_at = utcnow()
    await session.flush()
    return AnomalyRead.model_validate(anomaly)


# --- profiles -----------------------------------------------------------------------------------


def _profile_read(profile: Profile, user: User) -> ProfileRead:
    return ProfileRead(
        id=profile.id,
        organization_id=profile.organization_id,
        user_id=user.id,
        email=user.email,
        first_name=user.first_name,
        last_name=user.last_name,
        role=profile.role,
        archived_at=profile.archived_at,
        created_at=profile.created_at,
    )


async def list_profiles(
    session: AsyncSession,
    caller: Caller,
    page: Page,
    *,
    role: str | None = None,
    q: str | None = None,
    include_archived: bool = False,
) -> tuple[list[ProfileRead], int]:
    stmt = refs.readable_profiles(caller.organization_id, include_archived=include_archived)
    if role is not None:
        stmt = stmt.where(Profile.role == role)
    if q:
        stmt = stmt.where(
            or_(
                User.email.icontains(q, autoescape=True),
                User.first_name.icontains(q, autoescape=True),
                User.last_name.icontains(q, autoescape=True),
            )
        )
    rows, total = await refs.page_of_rows(
        session, stmt.order_by(Profile.id), page=page.page, page_size=page.size
    )
    return [_profile_read(profile, user) for profile, user in rows], total


async def get_profile(
    session: AsyncSession, caller: Caller, profile_id: int, *, include_archived: bool = False
) -> ProfileRead:
    row = (
        await session.execute(
            refs.readable_profiles(caller.organization_id, include_archived=include_archived).where(
                Profile.id == profile_id
            )
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"No profile {profile_id}.")
    profile, user = row
    return _profile_read(profile, user)


async def _lock_for_admin(session: AsyncSession, caller: Caller, profile_id: int) -> Profile:
    """The target profile, locked with the caller's own; the caller must still be an admin
    (the role was read before this transaction began)."""
    locked = await refs.lock_profiles(
        session, caller.organization_id, {caller.profile_id, profile_id}
    )
    me = locked.get(caller.profile_id)
    if me is None or me.role != "admin":
        raise Forbidden("Only an admin may change profiles.")
    target = locked.get(profile_id)
    if target is None:
        raise NotFound(f"No profile {profile_id}.")
    return target


async def _user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    assert user is not None  # a profile's user: the foreign key guarantees it
    return user


async def update_profile(
    session: AsyncSession, caller: Caller, profile_id: int, body: ProfileUpdate
) -> ProfileRead:
    """Change a member's role. An admin cannot demote themselves: the organisation would be
    left with one admin fewer by the only person who could undo it."""
    profile = await _lock_for_admin(session, caller, profile_id)
    if body.role is not None and body.role != profile.role:
        if profile.id == caller.profile_id:
            raise Conflict(
                "An admin cannot demote themselves; ask another admin.",
                errors=[{"field": "role", "message": "Cannot demote yourself."}],
            )
        profile.role = body.role
    await session.flush()
    return _profile_read(profile, await _user(session, profile.user_id))


async def archive_profile(session: AsyncSession, caller: Caller, profile_id: int) -> None:
    """The member loses access to the organisation at once (their sessions stop working)."""
    profile = await _lock_for_admin(session, caller, profile_id)
    if profile.id == caller.profile_id:
        raise Conflict("An admin cannot archive their own profile; ask another admin.")
    profile.archived_at = utcnow()
    await session.flush()
