"""Checkpoints: the service's Ed25519 signature over an organisation's journal head.

A checkpoint signs the RFC 8785 form of ``{"organizationId", "seq", "hash", "signedAt",
"keyId"}``: whoever holds the published key can check, offline, that the journal had this
head at that time, hence that no entry up to it was changed since. Made on demand and by the
worker for every journal whose head moved; one per head (unique on organisation and seq), so
several workers never sign a head twice. With an RFC 3161 authority configured, each
checkpoint is also time-stamped there (``timestamps``), after it is stored: an authority out
of reach never loses a checkpoint, it is time-stamped on a later round.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
from typing import Any

from interventions.config import Settings
from interventions.db import Database, Executor, utcnow
from interventions.errors import Conflict
from interventions.register import journal, keys
from interventions.register import repository as repo
from interventions.register.verifier.verify_register import checkpoint_document
from interventions.wire import format_datetime

logger = logging.getLogger(__name__)


class EmptyJournal(Conflict):
    """Nothing recorded yet: no head to sign."""

    slug = "empty-journal"

    def __init__(self, organization_id: int) -> None:
        super().__init__(
            f"The journal of organisation {organization_id} has no entry yet: there is no "
            "head to sign."
        )


def as_json(row: Any) -> dict[str, Any]:
    """A checkpoint row as exported (``checkpoints.json``) and checked."""
    return {
        "id": row.id,
        "organizationId": row.organization_id,
        "seq": row.seq,
        "hash": row.hash,
        "signedAt": format_datetime(row.signed_at),
        "keyId": row.key_id,
        "signature": row.signature,
        "timestampToken": row.timestamp_token,
        "tsaUrl": row.tsa_url,
    }


def signed_bytes(row: Any) -> bytes:
    """What the checkpoint's signature (and its time-stamp) covers."""
    return journal.canonical(checkpoint_document(as_json(row)))


def _to_milliseconds(value: dt.datetime) -> dt.datetime:
    # Stored as signed: the wire form has milliseconds, and a verifier rebuilds it from this.
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


async def make(
    db: Executor,
    store: keys.KeyStore,
    organization_id: int,
    *,
    tsa_url: str = "",
    now: dt.datetime | None = None,
) -> tuple[Any, bool]:
    """A checkpoint of the organisation's current head (its row) and whether it is new:
    a head already signed gives its existing checkpoint."""
    head = await journal.head(db, organization_id)
    if head is None:
        raise EmptyJournal(organization_id)
    existing = await repo.checkpoint_at(db, organization_id, head.seq)
    if existing is not None:
        return existing, False
    key = store.current()
    signed_at = _to_milliseconds(now or utcnow())
    await keys.publish(db, key, signed_at)
    document = {
        "organizationId": organization_id,
        "seq": head.seq,
        "hash": head.hash,
        "signedAt": format_datetime(signed_at),
        "keyId": key.key_id,
    }
    row = await repo.insert_checkpoint(
        db,
        id=secrets.token_urlsafe(9),
        organization_id=organization_id,
        seq=head.seq,
        hash=head.hash,
        signed_at=signed_at,
        key_id=key.key_id,
        signature=key.sign(journal.canonical(document)),
        tsa_url=tsa_url or None,
    )
    if row is None:  # another signer won this head meanwhile
        return await repo.checkpoint_at(db, organization_id, head.seq), False
    return row, True


async def checkpoint_round(db: Database, settings: Settings) -> int:
    """Sign the head of every journal that moved since its last checkpoint, then time-stamp
    what awaits it; how many checkpoints were made."""
    store = keys.KeyStore(settings)
    async with db.transaction(write=False) as executor:
        heads = await repo.uncheckpointed_heads(executor)
    made = 0
    for head in heads:
        async with db.transaction() as executor:
            _, created = await make(executor, store, head.organization_id, tsa_url=settings.tsa_url)
        made += created
    if settings.tsa_url:
        await stamp_pending(db, settings)
    return made


async def stamp_pending(db: Database, settings: Settings, *, limit: int = 100) -> int:
    """Ask the authority (``tsa_url``) for the tokens of checkpoints that still lack one;
    how many were stamped. A failure is kept on the checkpoint (``timestamp_error``) and
    retried on the next round; no transaction is open while the authority answers."""
    # asn1crypto (RFC 3161 tokens): imported where checkpoints are stamped, not in every
    # serving process.
    from interventions.register import timestamps

    async with db.transaction(write=False) as executor:
        pending = await repo.to_timestamp(executor, limit)
    stamped = 0
    for row in pending:
        token: str | None = None
        error: str | None = None
        try:
            token = await timestamps.fetch_token(
                settings.tsa_url, signed_bytes(row), seconds=settings.tsa_timeout_seconds
            )
        except timestamps.TimestampError as exc:
            error = str(exc)
            logger.warning("checkpoint %s not time-stamped: %s", row.id, error)
        async with db.transaction() as executor:
            await repo.set_timestamp(
                executor,
                organization_id=row.organization_id,
                checkpoint_id=row.id,
                token=token,
                error=error,
                tsa_url=settings.tsa_url,
            )
        stamped += token is not None
    return stamped


async def checkpoint_forever(db: Database, settings: Settings, stop: asyncio.Event) -> None:
    """A round every ``checkpoint_interval_seconds`` until ``stop``; never dies on an error."""
    while not stop.is_set():
        try:
            made = await checkpoint_round(db, settings)
            if made:
                logger.info("signed %d journal checkpoint(s)", made)
        except Exception:
            logger.exception("checkpoint round failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.checkpoint_interval_seconds)
