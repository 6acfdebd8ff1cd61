"""The journal: every change to an intervention, an anomaly, a stored signature or a
membership, one entry each, chained per organisation by SHA-256 (issue 11, item 1).

An entry's hash is the SHA-256 (lower-case hex) of the RFC 8785 canonical JSON of
``document(entry)``: its organisation, sequence number, time, actor, action, subject, changes
and the previous entry's hash (``GENESIS`` for the first). Anyone holding the entries can
recompute the chain; a checkpoint signs a head (``register.checkpoints``).

Writes ``record`` their entries on the executor; they are appended together just before the
transaction commits (``Executor.end``): one head statement and one insert per organisation
and transaction, whatever the number of entries, and the head's row lock — which orders the
organisation's appends — is held only from there to the commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, NamedTuple

import rfc8785
from pydantic.alias_generators import to_camel
from sqlalchemy import bindparam, insert, select
from sqlalchemy.dialects import postgresql

from interventions.db import Executor, Sql, table_of, utcnow
from interventions.register.models import JournalEntry, JournalHead
from interventions.wire import format_datetime

GENESIS = "0" * 64

ENTRIES = table_of(JournalEntry)
HEADS = table_of(JournalHead)
_E = ENTRIES.c


class Subject:
    """What an entry is about (``subject_type``)."""

    INTERVENTION = "intervention"
    ANOMALY = "anomaly"
    FILE = "file"
    PROFILE = "profile"
    ORGANIZATION = "organization"  # its settings (``autoAcceptAfterDays``)


@dataclass(frozen=True)
class Entry:
    """One change, as a write records it."""

    action: str
    subject_type: str
    subject_id: str | int
    changes: dict[str, Any]
    actor: dict[str, Any]


class Head(NamedTuple):
    seq: int
    hash: str


def user_actor(user_id: int | None, profile_id: int | None = None) -> dict[str, Any]:
    """A person of the organisation, acting through the API."""
    return {"type": "user", "userId": user_id, "profileId": profile_id}


def provider_actor(name: str, user_id: int, profile_id: int | None) -> dict[str, Any]:
    """A provider on site, named by the body, through the account that sent it."""
    return {"type": "provider", "name": name, "userId": user_id, "profileId": profile_id}


def system_actor(name: str) -> dict[str, Any]:
    """The service itself: ``planner``, ``import``, ``migration``…"""
    return {"type": "system", "name": name}


# JCS's integers: those an IEEE 754 double holds exactly (``rfc8785`` refuses the others).
_SAFE_INTEGER = 2**53 - 1
_BMP_END = "\U00010000"


def _same_in_json(value: Any) -> bool:
    """Whether ``json.dumps`` (sorted keys, no spaces, UTF-8) writes ``value`` exactly as RFC
    8785 does: no float (JCS writes numbers as ECMAScript does), integers in JCS's domain,
    object keys in the Basic Multilingual Plane (JCS sorts keys by UTF-16 unit, ``json`` by
    code point: the two orders agree there). Strings are escaped alike by both (``"``, ``\\``
    and the control characters, with the same short forms and lower-case ``\\u00xx``)."""
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -_SAFE_INTEGER <= value <= _SAFE_INTEGER
    if isinstance(value, dict):
        return all(
            isinstance(key, str)
            and (key.isascii() or max(key, default="") < _BMP_END)
            and _same_in_json(item)
            for key, item in value.items()
        )
    if isinstance(value, (list, tuple)):
        return all(_same_in_json(item) for item in value)
    return False


def canonical(document: dict[str, Any]) -> bytes:
    """RFC 8785 (JCS) canonical JSON: through the C JSON encoder when it writes the same bytes
    (``_same_in_json``; the usual case, several times faster), else ``rfc8785``."""
    if _same_in_json(document):
        try:
            text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            return text.encode()
        except UnicodeEncodeError:  # a lone surrogate: rfc8785 says so in its own terms
            pass
    return rfc8785.dumps(document)


def entry_hash(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(document)).hexdigest()


def document(row: Any) -> dict[str, Any]:
    """What an entry's hash covers, from a ``journal_entries`` row (or anything with its
    column names as attributes)."""
    return {
        "organizationId": row.organization_id,
        "seq": row.seq,
        "recordedAt": format_datetime(row.recorded_at),
        "actor": row.actor,
        "action": row.action,
        "subject": {"type": row.subject_type, "id": row.subject_id},
        "changes": row.changes,
        "prevHash": row.prev_hash,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def payload(changes: dict[str, tuple[Any, Any]] | dict[str, Any]) -> dict[str, Any]:
    """An entry's ``changes``: each member maps to ``(before, after)`` (recorded as
    ``{"from", "to"}``) or to a value; members are recorded by their wire names (SPEC §4.3),
    whichever spelling the caller used: the alias generator the schemas use, so that the
    journal and bodies name a member alike."""
    return {
        to_camel(key): (
            {"from": _jsonable(v[0]), "to": _jsonable(v[1])}
            if isinstance(v, tuple)
            else _jsonable(v)
        )
        for key, v in changes.items()
    }


def record(db: Executor, organization_id: int, entry: Entry) -> None:
    """Record ``entry`` in the executor's transaction: appended when it commits, dropped if
    it rolls back."""
    db.journal.setdefault(organization_id, []).append(entry)


# Moves the head by ``count`` entries (its row stays locked until the transaction ends: the
# organisation's appends are serialised, in commit order) and returns the new last seq with
# the hash it chains from: the previous entry's, or GENESIS for a first entry. One statement
# text on both databases (SQLite renders the same ON CONFLICT clause).
_HEAD_INSERT = postgresql.insert(HEADS).values(
    organization_id=bindparam("organization_id"),
    seq=bindparam("count"),
    hash=bindparam("genesis"),
)
_MOVE_HEAD = Sql(
    _HEAD_INSERT.on_conflict_do_update(
        index_elements=[HEADS.c.organization_id],
        set_={"seq": HEADS.c.seq + _HEAD_INSERT.excluded.seq},
    ).returning(HEADS.c.seq, HEADS.c.hash)
)
# The head's hash follows the entry inserted at its seq (a trigger: migration 0004).
_INSERT = Sql(insert(ENTRIES).values({c.key: bindparam(c.key) for c in ENTRIES.c}))
_HEAD = Sql(
    select(HEADS.c.seq, HEADS.c.hash).where(HEADS.c.organization_id == bindparam("organization_id"))
)
_SUBJECT = Sql(
    select(_E.seq, _E.recorded_at, _E.actor, _E.action, _E.changes)
    .where(
        _E.organization_id == bindparam("organization_id"),
        _E.subject_type == bindparam("subject_type"),
        _E.subject_id == bindparam("subject_id"),
    )
    .order_by(_E.seq)
)


def _milliseconds(value: dt.datetime) -> dt.datetime:
    """What ``recordedAt`` shows: the stored time must format back to the hashed text."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _as_stored(value: dict[str, Any]) -> dict[str, Any]:
    """The JSON value as it reads back from the database (tuples as lists…), so that the
    hash is computed over exactly what a verifier will read."""
    stored: dict[str, Any] = json.loads(json.dumps(value))
    return stored


async def append(db: Executor, organization_id: int, entries: Sequence[Entry]) -> Head:
    """Append ``entries`` to the organisation's journal now, in the executor's transaction:
    two statements (the head, the entries). The new head."""
    last, previous = await db.first(
        _MOVE_HEAD, organization_id=organization_id, count=len(entries), genesis=GENESIS
    )
    now = _milliseconds(utcnow())
    rows = []
    for seq, entry in enumerate(entries, start=last - len(entries) + 1):
        row = {
            "organization_id": organization_id,
            "seq": seq,
            "recorded_at": now,
            "actor": _as_stored(entry.actor),
            "action": entry.action,
            "subject_type": entry.subject_type,
            "subject_id": str(entry.subject_id),
            "changes": _as_stored(entry.changes),
            "prev_hash": previous,
        }
        previous = row["hash"] = entry_hash(document(SimpleNamespace(**row)))
        rows.append(row)
    if len(rows) == 1:
        await db.execute(_INSERT, **rows[0])
    else:
        await db.many(_INSERT, rows)
    return Head(last, previous)


async def flush(db: Executor) -> None:
    """Append what the transaction recorded (``record``), each organisation at once."""
    pending, db.journal = db.journal, {}
    for organization_id, entries in pending.items():
        await append(db, organization_id, entries)


Executor.before_commit = flush


async def head(db: Executor, organization_id: int) -> Head | None:
    """The organisation's last entry, or ``None`` before its first."""
    row = await db.first(_HEAD, organization_id=organization_id)
    return None if row is None else Head(row.seq, row.hash)


async def entries_about(
    db: Executor, organization_id: int, subject_type: str, subject_id: str | int
) -> list[Any]:
    """The entries about one subject, in order (``seq``, ``recorded_at``, ``actor``,
    ``action``, ``changes``)."""
    return await db.all(
        _SUBJECT,
        organization_id=organization_id,
        subject_type=subject_type,
        subject_id=str(subject_id),
    )
