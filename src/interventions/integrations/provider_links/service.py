"""Provider links (issue 12, item 7): the organisation creates, lists and revokes them; the
provider, with nothing but the link, reads its intervention, checks in with the PIN, executes
and uploads the signature — through the same use cases as the mobile app (``onsite``), each
action attributed to the contact in the journal.

A link is a random token (``secrets.token_urlsafe(32)``: 256 bits) kept only as its SHA-256.
It works while it is neither expired nor revoked, and while its intervention is assigned to
its contact: reassigning the intervention away suspends it (and assigning it back to the same
contact revives it, until its expiry). Every token that does not work — unknown, expired,
revoked, suspended — gets the same 404.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from interventions.auth.dependencies import Caller
from interventions.config import Settings
from interventions.db import Executor, utcnow
from interventions.errors import AlreadyCancelled, Conflict, NotFound, Unprocessable
from interventions.integrations.provider_links import repository as repo
from interventions.integrations.provider_links.schemas import (
    LinkStatus,
    ProviderActions,
    ProviderIntervention,
    ProviderLinkCreated,
    ProviderLinkRead,
    ProviderLinkSummary,
)
from interventions.interventions import onsite, presenter, search
from interventions.interventions import repository as interventions
from interventions.interventions.lifecycle import Action, Status, allows
from interventions.interventions.schemas import ExecutionFields
from interventions.references import repository as refs
from interventions.storage import service as storage

# How long a link may work, at most, from its creation; and by default after the
# intervention's scheduled end.
MAX_LIFETIME = dt.timedelta(days=90)
DEFAULT_AFTER_END = dt.timedelta(days=7)
PATH = "/provider/v1/"
CREATED = "provider-link"  # the journal's actions, on the intervention
REVOKED = "provider-link-revoke"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def link_url(base_url: str, token: str) -> str:
    return base_url.rstrip("/") + PATH + token


def contact_actor(link: Any) -> dict[str, Any]:
    """Who the journal names for what is done through ``link`` (a ``by_token_hash`` row)."""
    return {
        "type": "contact",
        "contactId": link.contact_id,
        "name": link.contact_name,
        "linkId": link.id,
    }


def status_of(link: Any, now: dt.datetime) -> LinkStatus:
    if link.revoked_at is not None:
        return "revoked"
    return "expired" if link.expires_at <= now else "active"


def _read(link: Any, now: dt.datetime) -> ProviderLinkRead:
    return ProviderLinkRead(
        id=link.id,
        intervention_id=link.intervention_id,
        contact_id=link.contact_id,
        status=status_of(link, now),
        expires_at=link.expires_at,
        revoked_at=link.revoked_at,
        created_by_user_id=link.created_by_user_id,
        created_at=link.created_at,
    )


def _no_contact(field: str) -> Unprocessable:
    return Unprocessable(
        "The intervention has no active assigned company contact to send a link to.",
        errors=[{"field": field, "message": "No assigned company contact."}],
    )


def _expiry(row: Any, asked: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    latest = now + MAX_LIFETIME
    if asked is None:
        end = row.scheduled_end if row.scheduled_end and row.scheduled_end > now else now
        return min(end + DEFAULT_AFTER_END, latest)
    if asked <= now or asked > latest:
        raise Unprocessable(
            "expiresAt must be in the future and at most 90 days ahead.",
            errors=[{"field": "expiresAt", "message": "In the future, at most 90 days ahead."}],
        )
    return asked


async def create_for(
    db: Executor,
    caller: Caller,
    row: Any,
    base_url: str,
    *,
    expires_at: dt.datetime | None = None,
    field: str = "assignedCompanyContactId",
) -> ProviderLinkCreated:
    """A new link to the intervention ``row`` for its assigned contact (422 naming ``field``
    when it has none, or an archived one), recorded in the journal; its URL, shown once."""
    if row.status == Status.CANCELLED:
        raise AlreadyCancelled("An intervention that is cancelled cannot get a provider link.")
    contact_id = row.assigned_company_contact_id
    contact = None
    if contact_id is not None:
        contact = (await refs.contacts(db, row.organization_id, [contact_id])).get(contact_id)
    if contact is None or contact.archived_at is not None:
        raise _no_contact(field)
    now = utcnow()
    expiry = _expiry(row, expires_at, now)
    token = secrets.token_urlsafe(32)
    link = await repo.insert_link(
        db,
        organization_id=row.organization_id,
        intervention_id=row.id,
        contact_id=contact.id,
        token_hash=token_hash(token),
        expires_at=expiry,
        revoked_at=None,
        created_by_user_id=caller.user_id,
        created_at=now,
    )
    await interventions.record_history(
        db,
        row,
        actor=caller.actor,
        action=CREATED,
        changes={"linkId": link.id, "contactId": contact.id, "expiresAt": expiry},
    )
    return ProviderLinkCreated(**_read(link, now).model_dump(), url=link_url(base_url, token))


async def create(
    db: Executor,
    caller: Caller,
    intervention_id: int,
    expires_at: dt.datetime | None,
    base_url: str,
) -> ProviderLinkCreated:
    row = await interventions.get(db, caller.organization_id, intervention_id)
    return await create_for(db, caller, row, base_url, expires_at=expires_at)


async def list_links(
    db: Executor, caller: Caller, intervention_id: int, *, page: int, page_size: int
) -> tuple[list[ProviderLinkRead], int]:
    """A page of the intervention's links, newest first (no token: it is never kept)."""
    await interventions.get(db, caller.organization_id, intervention_id)
    rows, total = await repo.of_intervention(
        db,
        caller.organization_id,
        intervention_id,
        offset=(page - 1) * page_size,
        limit=page_size,
    )
    now = utcnow()
    return [_read(r, now) for r in rows], total


async def revoke(db: Executor, caller: Caller, intervention_id: int, link_id: int) -> None:
    """The link stops working at once; revoking it twice is a 409."""
    row = await interventions.get(db, caller.organization_id, intervention_id)
    link = await repo.get(db, caller.organization_id, intervention_id, link_id)
    if link is None:
        raise NotFound(f"No provider link {link_id} for intervention {intervention_id}.")
    if not await repo.revoke(db, caller.organization_id, link.id, utcnow()):
        raise Conflict("The provider link is already revoked.")
    await interventions.record_history(
        db, row, actor=caller.actor, action=REVOKED, changes={"linkId": link.id}
    )


# --- the provider's side ------------------------------------------------------------------------


async def resolve(db: Executor, token: str) -> Any:
    """The working link of ``token``, else the same 404 whatever the reason."""
    link = await repo.by_token_hash(db, token_hash(token))
    if (
        link is None
        or link.revoked_at is not None
        or link.expires_at <= utcnow()
        or link.assigned_company_contact_id != link.contact_id
        or link.contact_archived_at is not None
    ):
        raise NotFound("No such provider link, or it no longer works.")
    return link


def _on_site(link: Any) -> onsite.OnSite:
    return onsite.OnSite(
        organization_id=link.organization_id,
        actor=contact_actor(link),
        user_id=None,
        pin_key=f"link:{link.id}",
    )


async def _locked(db: Executor, token: str) -> tuple[Any, Any]:
    """The link and its intervention, locked, still assigned to the link's contact."""
    link = await resolve(db, token)
    row = await interventions.get_for_update(db, link.organization_id, link.intervention_id)
    if row.assigned_company_contact_id != link.contact_id:  # reassigned meanwhile
        raise NotFound("No such provider link, or it no longer works.")
    return link, row


async def view(db: Executor, link: Any, row: Any) -> ProviderIntervention:
    """The intervention as the provider sees it: an allow-list of the web read's members."""
    found = await search.linked(db, link.organization_id, row.id)
    fields = presenter.read_fields(row, found.link_sets)
    kept = {k: v for k, v in fields.items() if k in ProviderIntervention.model_fields}
    return ProviderIntervention(
        **kept,
        sites=found.sites,
        rules=found.rules,
        anomalies=found.anomalies,
        signed=row.signature_file_id is not None,
        actions=ProviderActions(
            can_check_in=allows(Action.CHECK_IN, row.status, row.type),
            can_execute=allows(Action.EXECUTE, row.status, row.type),
        ),
        link=ProviderLinkSummary(id=link.id, expires_at=link.expires_at),
    )


async def read(db: Executor, token: str) -> ProviderIntervention:
    link = await resolve(db, token)
    row = await interventions.get(db, link.organization_id, link.intervention_id)
    return await view(db, link, row)


async def check_in(
    db: Executor, settings: Settings, token: str, code_pin: int
) -> ProviderIntervention:
    """As the mobile check-in (same lifecycle, same PIN limits, the link counted as the
    caller), attributed to the contact."""
    link, _ = await _locked(db, token)
    row = await onsite.check_in_as(db, settings, _on_site(link), link.intervention_id, code_pin)
    return await view(db, link, row)


async def execute(
    db: Executor,
    settings: Settings,
    token: str,
    body: ExecutionFields,
    base_url: str,
    storage_backend: storage.Storage,
) -> tuple[ProviderIntervention, str]:
    """As the mobile execution, attributed to the contact; the signature's upload URL."""
    link, _ = await _locked(db, token)
    row, url = await onsite.execute_as(
        db, _on_site(link), link.intervention_id, body, settings, base_url, storage_backend
    )
    return await view(db, link, row), url
