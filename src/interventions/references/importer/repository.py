"""Statements of the import. The file names rows of every organisation by their explicit
ids, so its look-ups by id cannot name one organisation: finding which organisation each id
belongs to is what they are for (the checks then refuse a reference across organisations),
and its updates may move a row to another organisation of the file."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, bindparam, delete, insert, select, text, update

from interventions.auth.models import Profile, User
from interventions.db import Executor, Sql, any_of, table_of
from interventions.references.models import (
    Anomaly,
    Company,
    CompanyContact,
    Organization,
    Routine,
    RoutineSiteRule,
    Rule,
    Site,
    SiteRule,
)

_BY_ID = "the import file names rows of every organisation by id (see the module)"


def _unscoped(table: Table) -> str | None:
    """The reason a statement over ``table`` by id alone names no organisation, if it has one."""
    return _BY_ID if "organization_id" in table.c else None


@dataclass(frozen=True)
class Section:
    """One section of the file as the database stores it: its table, the columns the file
    sets, and those it sets only when an entry names them (else a new row has the column's
    default and a stored row keeps its value). Its statements are built once."""

    table: Table
    columns: tuple[str, ...]
    optional: tuple[str, ...] = ()
    rows: Sql = field(init=False, repr=False)
    insert: Sql = field(init=False, repr=False)
    update: Sql = field(init=False, repr=False)

    def __post_init__(self) -> None:
        t = self.table
        reason = _unscoped(t)
        rows = Sql(select(t).where(any_of(t.c.id, "ids")), unscoped=reason)
        # The optional columns are left out: the executor gives their default unless given.
        added = Sql(insert(t).values({k: bindparam(k) for k in ("id", *self.columns)}))
        changed = Sql(
            update(t)
            .where(t.c.id == bindparam("id"))
            .values({k: bindparam(k) for k in self.written}),
            unscoped=reason,
        )
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "insert", added)
        object.__setattr__(self, "update", changed)

    @property
    def written(self) -> tuple[str, ...]:
        """The columns an update of a stored row writes."""
        return (*self.columns, *self.optional)


BY_SECTION: dict[str, Section] = {
    "organizations": Section(table_of(Organization), ("name",)),
    "users": Section(table_of(User), ("email", "password_hash", "first_name", "last_name")),
    "profiles": Section(table_of(Profile), ("user_id", "organization_id", "role")),
    "sites": Section(table_of(Site), ("organization_id", "name")),
    "rules": Section(table_of(Rule), ("organization_id", "name", "type")),
    "siteRules": Section(table_of(SiteRule), ("organization_id", "site_id", "rule_id")),
    "companies": Section(table_of(Company), ("organization_id", "name", "type", "email")),
    "companyContacts": Section(
        table_of(CompanyContact), ("organization_id", "company_id", "name", "email")
    ),
    # The service moves anomalies (in repair, resolved): a file that does not name a status
    # must not undo that on re-import.
    "anomalies": Section(
        table_of(Anomaly),
        ("organization_id", "site_id", "title", "description", "risk"),
        optional=("status",),
    ),
    "routines": Section(
        table_of(Routine),
        (
            "organization_id",
            "name",
            "rrule",
            "assigned_profile_id",
            "assigned_company_contact_id",
            "auto_create_enabled",
        ),
    ),
}


async def stored(db: Executor, section: Section, ids: Sequence[int]) -> dict[int, Any]:
    """The stored rows (records of every column) among ``ids``."""
    if not ids:
        return {}
    return {row.id: row for row in await db.all(section.rows, ids=list(ids))}


async def write(
    db: Executor,
    section: Section,
    inserted: Sequence[dict[str, Any]],
    updated: Sequence[dict[str, Any]],
) -> None:
    """The changed rows, then the new ones (as the unit of work ordered them: a row leaving
    a unique pair frees it for a new one)."""
    await db.many(section.update, updated)
    await db.many(section.insert, inserted)


def _by_id(model: Any, *columns: str) -> Sql:
    t = table_of(model)
    return Sql(
        select(t.c.id, *(t.c[c] for c in columns)).where(any_of(t.c.id, "ids")),
        unscoped=_unscoped(t),
    )


_KNOWN = {model: _by_id(model) for model in (Organization, User)}
_OWNERS = {
    (model, column): _by_id(model, column)
    for model, column in (
        (Site, "organization_id"),
        (Rule, "organization_id"),
        (Company, "organization_id"),
        (SiteRule, "organization_id"),
        (Profile, "organization_id"),
        (CompanyContact, "company_id"),
    )
}


async def known_ids(db: Executor, model: Any, ids: Iterable[int]) -> set[int]:
    """The ids among ``ids`` of stored rows (organisations, users)."""
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    return {row.id for row in await db.all(_KNOWN[model], ids=wanted)}


async def owners(
    db: Executor, model: Any, ids: Iterable[int], column: str = "organization_id"
) -> dict[int, int]:
    """id → owning id (organisation, company…) of stored rows."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {i: o for i, o in await db.all(_OWNERS[(model, column)], ids=wanted)}


def _pairs(model: Any, left: str, right: str) -> Sql:
    t = table_of(model)
    return Sql(
        select(t.c.id, t.c[left], t.c[right]).where(any_of(t.c[left], "ids")),
        unscoped=_unscoped(t),
    )


# One profile per (user, organisation), one site rule per (site, rule).
PAIRS = {
    "profiles": ("user_id", "organization_id", _pairs(Profile, "user_id", "organization_id")),
    "siteRules": ("site_id", "rule_id", _pairs(SiteRule, "site_id", "rule_id")),
}


async def stored_pairs(db: Executor, section: str, lefts: Iterable[int]) -> list[Any]:
    """(id, left, right) of the stored rows of the section's unique pair whose left is among
    ``lefts``."""
    _, _, sql = PAIRS[section]
    return await db.all(sql, ids=sorted(set(lefts)))


_USERS = table_of(User).c
_USER_OF_EMAIL = Sql(select(_USERS.id).where(_USERS.email == bindparam("email")))


async def user_of_email(db: Executor, email: str) -> int | None:
    """The stored user with the (lower-cased) e-mail, if any."""
    found: int | None = await db.scalar(_USER_OF_EMAIL, email=email)
    return found


_LINKS = table_of(RoutineSiteRule)
_LINK = _LINKS.c
_LINKS_OF = Sql(
    select(_LINK.routine_id, _LINK.site_rule_id).where(any_of(_LINK.routine_id, "ids")),
    unscoped=_BY_ID,
)
_UNLINK = Sql(delete(_LINKS).where(any_of(_LINK.routine_id, "ids")), unscoped=_BY_ID)
_LINK_ONE = Sql(
    insert(_LINKS).values(
        routine_id=bindparam("routine_id"),
        site_rule_id=bindparam("site_rule_id"),
        organization_id=bindparam("organization_id"),
    )
)


async def routine_site_rules(db: Executor, routine_ids: Sequence[int]) -> dict[int, set[int]]:
    """The stored site rules of each routine."""
    out: dict[int, set[int]] = {routine_id: set() for routine_id in routine_ids}
    if routine_ids:
        for routine_id, site_rule_id in await db.all(_LINKS_OF, ids=list(routine_ids)):
            out[routine_id].add(site_rule_id)
    return out


async def replace_routine_site_rules(
    db: Executor, organization_of: Mapping[int, int], site_rules: Mapping[int, Iterable[int]]
) -> None:
    """The site rules of each routine of ``site_rules`` become its set (``organization_of``:
    each routine's organisation)."""
    if not site_rules:
        return
    await db.execute(_UNLINK, ids=sorted(site_rules))
    await db.many(
        _LINK_ONE,
        [
            {
                "routine_id": routine_id,
                "site_rule_id": site_rule_id,
                "organization_id": organization_of[routine_id],
            }
            for routine_id, ids in site_rules.items()
            for site_rule_id in sorted(ids)
        ],
    )


_SEQUENCES = [
    Sql(
        text(
            f"SELECT setval(pg_get_serial_sequence('{section.table.name}', 'id'), "  # noqa: S608 - fixed names
            f"GREATEST((SELECT COALESCE(MAX(id), 0) FROM {section.table.name}), 1))"
        )
    )
    for section in BY_SECTION.values()
]


async def advance_sequences(db: Executor) -> None:
    """Explicit ids bypass PostgreSQL sequences: move them past the largest id."""
    if not db.postgresql:
        return
    for sql in _SEQUENCES:
        await db.execute(sql)
