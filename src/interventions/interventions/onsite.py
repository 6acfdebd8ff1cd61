"""On site, from the mobile app: the provider checks in with the PIN, then executes and signs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from interventions.auth import rate_limit
from interventions.auth.dependencies import Caller
from interventions.config import Settings
from interventions.db import Executor, utcnow
from interventions.errors import ChangedMeanwhile, SignatureTooLarge, WrongPin
from interventions.interventions import presenter
from interventions.interventions import repository as repo
from interventions.interventions.conditions import EntityTags, require
from interventions.interventions.lifecycle import Action, apply
from interventions.interventions.schemas import (
    ExecuteRequest,
    ExecutionFields,
    InterventionRead,
    SignatureMeta,
)
from interventions.notifications import service as notifications
from interventions.register.journal import provider_actor
from interventions.storage import service as storage
from interventions.transactions import RecordedRefusal


@dataclass(frozen=True)
class OnSite:
    """Who acts on site, and in which organisation: a member through the mobile app
    (``of_caller``) or a company contact through a provider link."""

    organization_id: int
    actor: dict[str, Any]  # the journal's actor of the check-in and the signature file
    user_id: int | None  # the account acting, if any (the stored file's creator)
    pin_key: str  # whose wrong PINs are counted, besides the intervention's
    # The journal's actor of an execution by the provider the body names; None: ``actor``.
    provider_actor_of: Callable[[str], dict[str, Any]] | None = None

    @classmethod
    def of_caller(cls, caller: Caller) -> OnSite:
        return cls(
            organization_id=caller.organization_id,
            actor=caller.actor,
            user_id=caller.user_id,
            pin_key=f"user:{caller.user_id}",
            # The provider named by the body acted, through the caller's account.
            provider_actor_of=lambda name: provider_actor(name, caller.user_id, caller.profile_id),
        )

    def execution_actor(self, provider_name: str) -> dict[str, Any]:
        if self.provider_actor_of is None:
            return self.actor
        return self.provider_actor_of(provider_name)


def check_signature_size(settings: Settings, size: int, field: str) -> None:
    if size > settings.signature_max_bytes:
        raise SignatureTooLarge(field, settings.signature_max_bytes)


async def new_signature(db: Executor, caller: Caller | OnSite, meta: SignatureMeta) -> Any:
    """A stored file awaiting its bytes (the record ``presign_put`` signs an upload for)."""
    return await storage.create_file(
        db,
        organization_id=caller.organization_id,
        user_id=caller.user_id,
        name=meta.name,
        mime_type=meta.mime_type,
        size=meta.size,
        actor=caller.actor,
    )


async def notify_executed(db: Executor, row: Any) -> None:
    """SPEC §4.3: an execution notifies the organisation's admins and managers in-app."""
    await notifications.notify_writers(
        db,
        organization_id=row.organization_id,
        intervention_id=row.id,
        kind=notifications.INTERVENTION_EXECUTED,
        message=f"Intervention {row.id} was executed and awaits verification.",
    )


def _pin_limits(settings: Settings, who: OnSite, intervention_id: int) -> list[rate_limit.Limit]:
    # Per intervention (whoever tries) and per user or provider link (whichever
    # intervention): the 900,000 codes cannot be walked from one account nor from many.
    return [
        rate_limit.Limit(
            key, settings.pin_max_failures, settings.pin_window_seconds, "wrong PIN codes"
        )
        for key in (f"pin:intervention:{intervention_id}", f"pin:{who.pin_key}")
    ]


async def check_in(
    db: Executor,
    settings: Settings,
    caller: Caller,
    intervention_id: int,
    code_pin: int,
    *,
    if_match: EntityTags | None = None,
) -> InterventionRead:
    """The mobile check-in: ``check_in_as`` the caller."""
    who = OnSite.of_caller(caller)
    row = await check_in_as(db, settings, who, intervention_id, code_pin, if_match=if_match)
    return await presenter.read_one(db, row)


async def check_in_as(
    db: Executor,
    settings: Settings,
    who: OnSite,
    intervention_id: int,
    code_pin: int,
    *,
    if_match: EntityTags | None = None,
) -> Any:
    """The provider is on site: the PIN matches → in progress, ``actualStart`` = now.

    Past ``pin_max_failures`` wrong PINs in the window, refused with 429 before comparing.
    Each attempt is charged before the comparison; a wrong PIN is refused and its charge
    committed (``RecordedRefusal``), a right one is refunded. Charging serialises attempts
    on the same keys until the request commits (an advisory lock on PostgreSQL, the write
    lock on SQLite), so concurrent attempts, even on several interventions, are compared
    one after the other and at most ``pin_max_failures`` times. The row as it now is.
    """
    # Locked: concurrent attempts on one intervention are counted one after the other.
    row = await repo.get_for_update(db, who.organization_id, intervention_id)
    require(row, if_match)
    charged = await rate_limit.charge(db, _pin_limits(settings, who, row.id))
    before = row.status
    try:
        # The status is checked before the PIN: a 409 rolls the charge back.
        status = apply(Action.CHECK_IN, before, row.type, pin_matches=row.code_pin == code_pin)
    except WrongPin as wrong:
        raise RecordedRefusal(wrong) from None
    await rate_limit.refund(db, charged)
    now = utcnow()
    row, written = await repo.write(
        db, row, {"status": status, "actual_start": now, "updated_at": now}
    )
    if not written:
        raise ChangedMeanwhile()
    await repo.record_history(
        db,
        row,
        actor=who.actor,
        action=Action.CHECK_IN,
        changes={"status": (before, status), "actualStart": (None, now)},
    )
    return row


async def execute(
    db: Executor,
    caller: Caller,
    body: ExecuteRequest,
    settings: Settings,
    base_url: str,
    storage_backend: storage.Storage,
    *,
    if_match: EntityTags | None = None,
) -> tuple[InterventionRead, str]:
    """The mobile execution: ``execute_as`` the caller."""
    row, url = await execute_as(
        db,
        OnSite.of_caller(caller),
        body.intervention_id,
        body,
        settings,
        base_url,
        storage_backend,
        if_match=if_match,
    )
    return await presenter.read_one(db, row), url


async def execute_as(
    db: Executor,
    who: OnSite,
    intervention_id: int,
    body: ExecutionFields,
    settings: Settings,
    base_url: str,
    storage_backend: storage.Storage,
    *,
    if_match: EntityTags | None = None,
) -> tuple[Any, str]:
    """Executed and signed → to verify: the row as it now is, and the signature's upload
    URL (after ``If-Match``, when given, holds)."""
    check_signature_size(settings, body.signature.size, "signature.size")
    row = await repo.get_for_update(db, who.organization_id, intervention_id)
    require(row, if_match)
    status = apply(
        Action.EXECUTE,
        row.status,
        row.type,
        signed=body.signature is not None,
        attendee_count=body.attendee_count,
    )
    signature = await new_signature(db, who, body.signature)
    now = utcnow()
    provider = f"{body.first_name} {body.last_name}"
    changes = {
        "status": status,
        "actual_end": now,
        "provider_name": provider,
        "provider_email": body.email,
        "provider_action_comment": body.provider_action_comment,
        "provider_general_comment": body.comment,
        "attendee_count": body.attendee_count,
    }
    history = {key: (getattr(row, key), value) for key, value in changes.items()}
    row, written = await repo.write(
        db, row, {**changes, "signature_file_id": signature.id, "updated_at": now}
    )
    if not written:
        raise ChangedMeanwhile()
    actor = who.execution_actor(provider)
    await repo.record_history(db, row, actor=actor, action=Action.EXECUTE, changes=history)
    await notify_executed(db, row)
    return row, storage_backend.presign_put(signature, base_url)
