"""On site, from the mobile app: the provider checks in with the PIN, then executes and signs."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from interventions.auth import rate_limit
from interventions.auth.dependencies import Caller
from interventions.config import Settings
from interventions.db import RecordedRefusal, utcnow
from interventions.errors import SignatureTooLarge, WrongPin
from interventions.interventions import repository as repo
from interventions.interventions.lifecycle import Action, apply
from interventions.interventions.models import Intervention
from interventions.interventions.schemas import (
    CheckInRequest,
    ExecuteRequest,
    InterventionRead,
    SignatureMeta,
)
from interventions.notifications import service as notifications
from interventions.storage import service as storage
from interventions.storage.models import StoredFile


def check_signature_size(settings: Settings, size: int, field: str) -> None:
    if size > settings.signature_max_bytes:
        raise SignatureTooLarge(field, settings.signature_max_bytes)


async def attach_signature(
    session: AsyncSession, caller: Caller, intervention: Intervention | None, meta: SignatureMeta
) -> StoredFile:
    """A stored file awaiting its bytes; linked to ``intervention`` when given."""
    signature = storage.new_file(
        session,
        organization_id=caller.organization_id,
        user_id=caller.user_id,
        name=meta.name,
        mime_type=meta.mime_type,
        size=meta.size,
    )
    await session.flush()  # no ORM relationship orders these inserts: the file goes first
    if intervention is not None:
        intervention.signature_file_id = signature.id
    return signature


async def notify_executed(session: AsyncSession, intervention: Intervention) -> None:
    """SPEC §4.3: an execution notifies the organisation's admins and managers in-app."""
    await notifications.notify_writers(
        session,
        organization_id=intervention.organization_id,
        intervention_id=intervention.id,
        kind=notifications.INTERVENTION_EXECUTED,
        message=f"Intervention {intervention.id} was executed and awaits verification.",
    )


def _pin_limits(settings: Settings, caller: Caller, intervention_id: int) -> list[rate_limit.Limit]:
    # Per intervention (whoever tries) and per user (whichever intervention): the 900,000
    # codes cannot be walked from one account nor from many.
    return [
        rate_limit.Limit(
            key, settings.pin_max_failures, settings.pin_window_seconds, "wrong PIN codes"
        )
        for key in (f"pin:intervention:{intervention_id}", f"pin:user:{caller.user_id}")
    ]


async def check_in(
    session: AsyncSession, settings: Settings, caller: Caller, body: CheckInRequest
) -> InterventionRead:
    """The provider is on site: the PIN matches → in progress, ``actualStart`` = now.

    Past ``pin_max_failures`` wrong PINs in the window, refused with 429 before comparing.
    Each attempt is charged before the comparison; a wrong PIN is refused and its charge
    committed (``RecordedRefusal``), a right one is refunded. Charging serialises attempts
    on the same keys until the request commits (an advisory lock on PostgreSQL, the write
    lock on SQLite), so concurrent attempts, even on several interventions, are compared
    one after the other and at most ``pin_max_failures`` times.
    """
    # Locked: concurrent attempts on one intervention are counted one after the other.
    intervention = await repo.get_for_update(session, caller.organization_id, body.intervention_id)
    charged = await rate_limit.charge(session, _pin_limits(settings, caller, intervention.id))
    before = intervention.status
    try:
        # The status is checked before the PIN: a 409 rolls the charge back.
        status = apply(
            Action.CHECK_IN,
            before,
            intervention.type,
            pin_matches=intervention.code_pin == body.code_pin,
        )
    except WrongPin as wrong:
        raise RecordedRefusal(wrong) from None
    await rate_limit.refund(session, charged)
    now = utcnow()
    intervention.status = status
    intervention.actual_start = now
    intervention.updated_at = now
    await repo.record_history(
        session,
        intervention,
        user_id=caller.user_id,
        action=Action.CHECK_IN,
        changes={"status": (before, status), "actualStart": (None, now)},
    )
    await session.flush()
    return await repo.read_one(session, intervention)


async def execute(
    session: AsyncSession,
    caller: Caller,
    body: ExecuteRequest,
    settings: Settings,
    base_url: str,
    storage_backend: storage.Storage,
) -> tuple[InterventionRead, str]:
    """Executed and signed → to verify; returns the signature's upload URL."""
    check_signature_size(settings, body.signature.size, "signature.size")
    intervention = await repo.get_for_update(session, caller.organization_id, body.intervention_id)
    status = apply(
        Action.EXECUTE,
        intervention.status,
        intervention.type,
        signed=body.signature is not None,
        attendee_count=body.attendee_count,
    )
    signature = await attach_signature(session, caller, intervention, body.signature)
    now = utcnow()
    changes = {
        "status": status,
        "actual_end": now,
        "provider_name": f"{body.first_name} {body.last_name}",
        "provider_email": body.email,
        "provider_action_comment": body.provider_action_comment,
        "provider_general_comment": body.comment,
        "attendee_count": body.attendee_count,
    }
    history = {key: (getattr(intervention, key), value) for key, value in changes.items()}
    for key, value in changes.items():
        setattr(intervention, key, value)
    intervention.updated_at = now
    await repo.record_history(
        session, intervention, user_id=caller.user_id, action=Action.EXECUTE, changes=history
    )
    await session.flush()
    await notify_executed(session, intervention)
    read = await repo.read_one(session, intervention)
    return read, storage_backend.presign_put(signature, base_url)
