"""Statements over provider links (``db.Sql``). Every look-up by id starts from the
organisation's links; only the provider side finds a link by its token's hash (the token is
the credential, and what finds the organisation)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, select, update

from interventions.db import Executor, Sql, UTCDateTime, table_of
from interventions.integrations.provider_links.models import ProviderLink
from interventions.interventions.models import Intervention
from interventions.references.models import CompanyContact

LINKS = table_of(ProviderLink)
_L = LINKS.c
_INTERVENTIONS = table_of(Intervention)
_CONTACTS = table_of(CompanyContact)


def _ours() -> Any:
    return _L.organization_id == bindparam("organization_id")


_INSERT = Sql(
    insert(LINKS)
    .values({c.key: bindparam(c.key) for c in LINKS.c if c.key != "id"})
    .returning(*LINKS.c)
)
_OF_INTERVENTION = Sql(
    select(LINKS)
    .where(_ours(), _L.intervention_id == bindparam("intervention_id"))
    .order_by(_L.id.desc())
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)
_COUNT = Sql(
    select(func.count())
    .select_from(LINKS)
    .where(_ours(), _L.intervention_id == bindparam("intervention_id"))
)
_BY_ID = Sql(
    select(LINKS).where(
        _ours(), _L.intervention_id == bindparam("intervention_id"), _L.id == bindparam("id")
    )
)
_REVOKE = Sql(
    update(LINKS)
    .where(_ours(), _L.id == bindparam("id"), _L.revoked_at.is_(None))
    .values(revoked_at=bindparam("now", type_=UTCDateTime()))
)
# The link, its contact and whom its intervention is assigned to now, by the token's hash.
_BY_TOKEN = Sql(
    select(
        *LINKS.c,
        _CONTACTS.c.name.label("contact_name"),
        _CONTACTS.c.archived_at.label("contact_archived_at"),
        _INTERVENTIONS.c.assigned_company_contact_id,
    )
    .join(
        _INTERVENTIONS,
        and_(
            _INTERVENTIONS.c.id == _L.intervention_id,
            _INTERVENTIONS.c.organization_id == _L.organization_id,
        ),
    )
    .join(
        _CONTACTS,
        and_(_CONTACTS.c.id == _L.contact_id, _CONTACTS.c.organization_id == _L.organization_id),
    )
    .where(_L.token_hash == bindparam("token_hash")),
    unscoped="a provider link's token is the credential: it is what finds the organisation",
)


async def insert_link(db: Executor, **values: Any) -> Any:
    """The new link (a record of its columns)."""
    return await db.first(_INSERT, **values)


async def of_intervention(
    db: Executor, organization_id: int, intervention_id: int, *, offset: int, limit: int
) -> tuple[list[Any], int]:
    """A page of the intervention's links, newest first, and how many it has."""
    params = {"organization_id": organization_id, "intervention_id": intervention_id}
    rows = await db.all(_OF_INTERVENTION, offset=offset, limit=limit, **params)
    total = int(await db.scalar(_COUNT, **params))
    return rows, total


async def get(db: Executor, organization_id: int, intervention_id: int, link_id: int) -> Any:
    """The intervention's link, or ``None``."""
    return await db.first(
        _BY_ID, organization_id=organization_id, intervention_id=intervention_id, id=link_id
    )


async def revoke(db: Executor, organization_id: int, link_id: int, now: dt.datetime) -> bool:
    """Revoke the link unless it is already; whether it was revoked now."""
    return await db.execute(_REVOKE, organization_id=organization_id, id=link_id, now=now) == 1


async def by_token_hash(db: Executor, token_hash: str) -> Any:
    """The link with this token hash, its contact's ``contact_name`` and
    ``contact_archived_at``, and its intervention's ``assigned_company_contact_id``; or
    ``None``."""
    return await db.first(_BY_TOKEN, token_hash=token_hash)
