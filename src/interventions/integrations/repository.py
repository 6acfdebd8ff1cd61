"""Calendar feed statements run by the executor (``db.Sql``): the organisation's feeds, and
what a feed shows. Every statement names the organisation, but the feed's look-up by its
token (the token is the credential: it is what finds the organisation)."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
    update,
)

from interventions.auth.models import Profile, User
from interventions.db import Executor, Sql, any_of, table_of
from interventions.integrations.models import CalendarFeed
from interventions.interventions.models import (
    Intervention,
    InterventionAnomaly,
    InterventionRule,
    InterventionSite,
    InterventionSiteRule,
)
from interventions.references import repository as refs
from interventions.references.models import Anomaly, Company, CompanyContact, Rule, Site, SiteRule

_FEEDS = table_of(CalendarFeed)
_F = _FEEDS.c
_PROFILES = table_of(Profile)
_USERS = table_of(User)
_SITES = table_of(Site)
_CONTACTS = table_of(CompanyContact)
_COMPANIES = table_of(Company)
_I = table_of(Intervention).c


def _ours(*tables: Any) -> ColumnElement[bool]:
    """Every table of a statement names the organisation (tests/test_tenant_scoping.py)."""
    return and_(*(t.c.organization_id == bindparam("organization_id") for t in tables))


# --- the organisation's feeds ---------------------------------------------------------------

# A feed as it is read (``CalendarFeedRead``): its columns and the user of its profile.
_READABLE = select(*_FEEDS.c, _PROFILES.c.user_id).outerjoin(
    _PROFILES,
    and_(
        _PROFILES.c.id == _F.profile_id,
        _PROFILES.c.organization_id == bindparam("organization_id"),
    ),
)


@functools.cache
def _feeds(*, of_profile: bool, include_revoked: bool) -> refs.Listing:
    """The organisation's feeds by id: only the user feeds of ``profile_id`` when
    ``of_profile``, the revoked ones too when ``include_revoked``."""
    stmt = _READABLE.where(_ours(_FEEDS))
    if of_profile:
        stmt = stmt.where(_F.scope == "user", _F.profile_id == bindparam("profile_id"))
    if not include_revoked:
        stmt = stmt.where(_F.revoked_at.is_(None))
    return refs.Listing(stmt.order_by(_F.id))


# Built now rather than at the first request, so that the tenant-scoping test sees them.
for _of_profile in (False, True):
    for _include_revoked in (False, True):
        _feeds(of_profile=_of_profile, include_revoked=_include_revoked)


async def feeds_page(
    db: Executor,
    organization_id: int,
    *,
    profile_id: int | None,
    include_revoked: bool,
    page: int,
    page_size: int,
) -> tuple[list[Any], int]:
    """One page of the organisation's feeds (read records, by id) and how many in all; only
    the user feeds of ``profile_id`` when given."""
    listing = _feeds(of_profile=profile_id is not None, include_revoked=include_revoked)
    params: dict[str, Any] = {"organization_id": organization_id}
    if profile_id is not None:
        params["profile_id"] = profile_id
    return await refs.page_of(db, listing, page=page, page_size=page_size, **params)


_ONE = _READABLE.where(_ours(_FEEDS), _F.id == bindparam("id"))
_FEED = {False: Sql(_ONE), True: Sql(_ONE.with_for_update(of=_FEEDS))}


async def feed(db: Executor, organization_id: int, feed_id: int, *, lock: bool) -> Any:
    """The organisation's feed (a read record; row-locked when ``lock``), or ``None``."""
    return await db.first(_FEED[lock], organization_id=organization_id, id=feed_id)


_INSERT = Sql(
    insert(_FEEDS)
    .values(
        organization_id=bindparam("organization_id"),
        scope=bindparam("scope"),
        profile_id=bindparam("profile_id"),
        site_id=bindparam("site_id"),
        company_contact_id=bindparam("company_contact_id"),
        name=bindparam("name"),
        token_hash=bindparam("token_hash"),
        created_by_profile_id=bindparam("created_by_profile_id"),
        created_at=bindparam("created_at"),
    )
    .returning(_F.id)
)


async def insert_feed(
    db: Executor,
    organization_id: int,
    *,
    scope: str,
    profile_id: int | None,
    site_id: int | None,
    company_contact_id: int | None,
    name: str,
    token_hash: str,
    created_by_profile_id: int,
    created_at: dt.datetime,
) -> int:
    """The new feed's id."""
    new_id: int = await db.scalar(
        _INSERT,
        organization_id=organization_id,
        scope=scope,
        profile_id=profile_id,
        site_id=site_id,
        company_contact_id=company_contact_id,
        name=name,
        token_hash=token_hash,
        created_by_profile_id=created_by_profile_id,
        created_at=created_at,
    )
    return new_id


_ROTATE = Sql(
    update(_FEEDS)
    .where(_ours(_FEEDS), _F.id == bindparam("id"))
    .values(token_hash=bindparam("token_hash"), rotated_at=bindparam("now"))
)
_REVOKE = Sql(
    update(_FEEDS)
    .where(_ours(_FEEDS), _F.id == bindparam("id"))
    .values(revoked_at=bindparam("now"))
)


async def rotate(
    db: Executor, organization_id: int, feed_id: int, token_hash: str, now: dt.datetime
) -> None:
    await db.execute(
        _ROTATE, organization_id=organization_id, id=feed_id, token_hash=token_hash, now=now
    )


async def revoke(db: Executor, organization_id: int, feed_id: int, now: dt.datetime) -> None:
    await db.execute(_REVOKE, organization_id=organization_id, id=feed_id, now=now)


# What a feed is called when its creator names it not: its subject's name.
_USER_NAME = Sql(
    select(_USERS.c.first_name, _USERS.c.last_name, _USERS.c.email)
    .join(_PROFILES, _PROFILES.c.user_id == _USERS.c.id)
    .where(_PROFILES.c.id == bindparam("id"), _ours(_PROFILES))
)
_CONTACT_NAME = Sql(
    select(_CONTACTS.c.name, _COMPANIES.c.name.label("company"))
    .join(_COMPANIES, _COMPANIES.c.id == _CONTACTS.c.company_id)
    .where(_CONTACTS.c.id == bindparam("id"), _ours(_CONTACTS, _COMPANIES))
)


async def user_of_profile(db: Executor, organization_id: int, profile_id: int) -> Any:
    """The names and e-mail of the profile's user."""
    return await db.first(_USER_NAME, organization_id=organization_id, id=profile_id)


async def contact_name(db: Executor, organization_id: int, contact_id: int) -> Any:
    """The contact's name and its company's."""
    return await db.first(_CONTACT_NAME, organization_id=organization_id, id=contact_id)


# --- reading a feed ---------------------------------------------------------------------------

# The feed of a token, with whether its subject is still there: a member who left (profile
# archived, account disabled), an archived site or contact, ends the feed.
_BY_TOKEN = Sql(
    select(
        _F.id,
        _F.organization_id,
        _F.scope,
        _F.profile_id,
        _F.site_id,
        _F.company_contact_id,
        _F.name,
        _F.last_used_at,
        _PROFILES.c.id.label("active_profile_id"),
        _USERS.c.disabled_at.label("user_disabled_at"),
        _SITES.c.id.label("active_site_id"),
        _CONTACTS.c.id.label("active_contact_id"),
    )
    .outerjoin(
        _PROFILES,
        and_(
            _PROFILES.c.id == _F.profile_id,
            _PROFILES.c.organization_id == _F.organization_id,
            _PROFILES.c.archived_at.is_(None),
        ),
    )
    .outerjoin(_USERS, _USERS.c.id == _PROFILES.c.user_id)
    .outerjoin(
        _SITES,
        and_(
            _SITES.c.id == _F.site_id,
            _SITES.c.organization_id == _F.organization_id,
            _SITES.c.archived_at.is_(None),
        ),
    )
    .outerjoin(
        _CONTACTS,
        and_(
            _CONTACTS.c.id == _F.company_contact_id,
            _CONTACTS.c.organization_id == _F.organization_id,
            _CONTACTS.c.archived_at.is_(None),
        ),
    )
    .where(_F.token_hash == bindparam("token_hash"), _F.revoked_at.is_(None)),
    unscoped="a calendar app reading its feed: the token (its hash) is what finds the organisation",
)


async def feed_by_token(db: Executor, token_hash: str) -> Any:
    """The live feed whose token hashes to ``token_hash`` (with its subject's state), or
    ``None`` (unknown, rotated away or revoked)."""
    return await db.first(_BY_TOKEN, token_hash=token_hash)


# Only when the last recorded use is older than ``stale_before``: of concurrent reads, one
# writes; the others change nothing.
_TOUCH = Sql(
    update(_FEEDS)
    .where(
        _ours(_FEEDS),
        _F.id == bindparam("id"),
        or_(_F.last_used_at.is_(None), _F.last_used_at < bindparam("stale_before")),
    )
    .values(last_used_at=bindparam("now"))
)


async def record_use(
    db: Executor, organization_id: int, feed_id: int, now: dt.datetime, stale_before: dt.datetime
) -> None:
    await db.execute(
        _TOUCH, organization_id=organization_id, id=feed_id, now=now, stale_before=stale_before
    )


# The interventions of a feed: scheduled within the window (overlapping it), earliest first,
# at most ``limit`` of them.
_EVENT_COLUMNS = (
    _I.id,
    _I.type,
    _I.status,
    _I.description,
    _I.scheduled_start,
    _I.scheduled_end,
    _I.cancellation_reason,
    _I.created_at,
    _I.updated_at,
    _I.version,
)
_INTERVENTIONS = table_of(Intervention)
_LINKED_SITES = table_of(InterventionSite)


def _in_window() -> Select[Any]:
    return select(*_EVENT_COLUMNS).where(
        _ours(_INTERVENTIONS),
        _I.scheduled_start.is_not(None),
        _I.scheduled_start <= bindparam("until", type_=_I.scheduled_start.type),
        func.coalesce(_I.scheduled_end, _I.scheduled_start)
        >= bindparam("since", type_=_I.scheduled_start.type),
    )


def _events(subject: ColumnElement[bool]) -> Sql:
    return Sql(
        _in_window()
        .where(subject)
        .order_by(_I.scheduled_start, _I.id)
        .limit(bindparam("limit", type_=Integer()))
    )


_EVENTS = {
    "user": _events(_I.assigned_profile_id == bindparam("subject_id")),
    "contact": _events(_I.assigned_company_contact_id == bindparam("subject_id")),
    "site": _events(
        exists(
            select(_LINKED_SITES.c.intervention_id).where(
                _LINKED_SITES.c.intervention_id == _I.id,
                _LINKED_SITES.c.site_id == bindparam("subject_id"),
                _ours(_LINKED_SITES),
            )
        )
    ),
}


async def events(
    db: Executor,
    organization_id: int,
    scope: str,
    subject_id: int,
    *,
    since: dt.datetime,
    until: dt.datetime,
    limit: int,
) -> list[Any]:
    """The interventions of the feed's subject scheduled between ``since`` and ``until``."""
    return await db.all(
        _EVENTS[scope],
        organization_id=organization_id,
        subject_id=subject_id,
        since=since,
        until=until,
        limit=limit,
    )


_SITE_LINKS = table_of(InterventionSite)
_RULE_LINKS = table_of(InterventionRule)
_SITE_RULE_LINKS = table_of(InterventionSiteRule)
_ANOMALY_LINKS = table_of(InterventionAnomaly)
_RULES = table_of(Rule)
_SITE_RULES = table_of(SiteRule)
_ANOMALIES = table_of(Anomaly)

# (intervention_id, member, name) of every site, rule (directly or through a site rule) and
# anomaly the interventions ``ids`` link to.
_NAMES = Sql(
    union_all(
        select(_SITE_LINKS.c.intervention_id, literal("site"), _SITES.c.name)
        .join(_SITES, _SITES.c.id == _SITE_LINKS.c.site_id)
        .where(any_of(_SITE_LINKS.c.intervention_id, "ids"), _ours(_SITE_LINKS, _SITES)),
        select(_RULE_LINKS.c.intervention_id, literal("rule"), _RULES.c.name)
        .join(_RULES, _RULES.c.id == _RULE_LINKS.c.rule_id)
        .where(any_of(_RULE_LINKS.c.intervention_id, "ids"), _ours(_RULE_LINKS, _RULES)),
        select(_SITE_RULE_LINKS.c.intervention_id, literal("rule"), _RULES.c.name)
        .join(_SITE_RULES, _SITE_RULES.c.id == _SITE_RULE_LINKS.c.site_rule_id)
        .join(_RULES, _RULES.c.id == _SITE_RULES.c.rule_id)
        .where(
            any_of(_SITE_RULE_LINKS.c.intervention_id, "ids"),
            _ours(_SITE_RULE_LINKS, _SITE_RULES, _RULES),
        ),
        select(_ANOMALY_LINKS.c.intervention_id, literal("anomaly"), _ANOMALIES.c.title)
        .join(_ANOMALIES, _ANOMALIES.c.id == _ANOMALY_LINKS.c.anomaly_id)
        .where(any_of(_ANOMALY_LINKS.c.intervention_id, "ids"), _ours(_ANOMALY_LINKS, _ANOMALIES)),
    )
)


async def names(
    db: Executor, organization_id: int, intervention_ids: list[int]
) -> dict[int, dict[str, list[str]]]:
    """Per intervention, the names of its sites, rules and anomalies (``site``, ``rule``,
    ``anomaly``), each sorted and counted once."""
    found: dict[int, dict[str, set[str]]] = {}
    if intervention_ids:
        rows = await db.all(_NAMES, organization_id=organization_id, ids=intervention_ids)
        for intervention_id, member, name in rows:
            found.setdefault(intervention_id, {}).setdefault(member, set()).add(name)
    return {
        i: {member: sorted(values) for member, values in found.get(i, {}).items()}
        for i in intervention_ids
    }
