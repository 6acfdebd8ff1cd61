"""The journal: every change to an intervention, an anomaly, a stored signature or a
membership, one entry each, chained per organisation by SHA-256 (issue 11, item 1).

An entry's hash is the SHA-256 (lower-case hex) of the RFC 8785 canonical JSON of
``document(entry)``: its organisation, sequence number, time, actor, action, subject, changes
and the previous entry's hash (``GENESIS`` for the first). Anyone holding the entries can
recompute the chain; a checkpoint signs a head (``register.checkpoints``).

Writes ``record`` their entries on the executor; they are appended together just before the
transaction commits (``Executor.end``), per organisation and transaction whatever the number
of entries: one statement on PostgreSQL (``_APPEND``: the head moved, the entries chained in
SQL and inserted), two on SQLite (the head, then the entries chained here). The head's row
lock — which orders the organisation's appends — is held only from there to the commit.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import rfc8785
from pydantic.alias_generators import to_camel
from sqlalchemy import BigInteger, Text, bindparam, cast, func, insert, literal_column, null, select
from sqlalchemy.dialects import postgresql

from interventions.db import Executor, Sql, TextList, table_of, utcnow
from interventions.idempotency import repository as keys
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
    and the control characters, with the same short forms and lower-case ``\\u00xx``).
    A walk with a stack, exact types first: it runs on every entry of every write."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or item is None or kind is bool:
            continue
        if kind is dict:
            for key, member in item.items():
                if type(key) is not str or not (key.isascii() or max(key) < _BMP_END):
                    return False
                stack.append(member)
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif isinstance(item, int):  # int, bool and int enums
            if not -_SAFE_INTEGER <= item <= _SAFE_INTEGER:
                return False
        elif isinstance(item, str):  # str enums
            continue
        elif isinstance(item, dict):
            stack.append(dict(item))
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        else:
            return False
    return True


# Sorted keys, no spaces, UTF-8: made once (``json.dumps`` with these options makes an
# encoder per call).
_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def canonical(document: dict[str, Any]) -> bytes:
    """RFC 8785 (JCS) canonical JSON: through the C JSON encoder when it writes the same bytes
    (``_same_in_json``; the usual case, several times faster), else ``rfc8785``."""
    if _same_in_json(document):
        try:
            text = _ENCODE(document)
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


# A member's wire name, once per name: pydantic's generator runs three regular expressions
# (2 % of an update's CPU, bench/README.md log step 38); the names are the schemas' members.
_wire_name = functools.lru_cache(maxsize=1024)(to_camel)


def payload(changes: dict[str, tuple[Any, Any]] | dict[str, Any]) -> dict[str, Any]:
    """An entry's ``changes``: each member maps to ``(before, after)`` (recorded as
    ``{"from", "to"}``) or to a value; members are recorded by their wire names (SPEC §4.3),
    whichever spelling the caller used: the alias generator the schemas use, so that the
    journal and bodies name a member alike."""
    return {
        _wire_name(key): (
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
# the hash it chains from: the previous entry's, or GENESIS for a first entry. PostgreSQL's
# construct; SQLite's compiler renders the same ON CONFLICT clause.
_HEAD_INSERT = postgresql.insert(HEADS).values(
    organization_id=bindparam("organization_id"),
    seq=bindparam("count"),
    hash=bindparam("genesis"),
)
_HEAD_MOVED = _HEAD_INSERT.on_conflict_do_update(
    index_elements=[HEADS.c.organization_id],
    set_={"seq": HEADS.c.seq + _HEAD_INSERT.excluded.seq},
).returning(HEADS.c.seq, HEADS.c.hash)
_MOVE_HEAD = Sql(_HEAD_MOVED)
# The head's hash follows the entry inserted at its seq (a trigger: migration 0004).
_INSERT = Sql(insert(ENTRIES).values({c.key: bindparam(c.key) for c in ENTRIES.c}))


def _append_in_one_statement(*, keyed: bool = False) -> Sql:
    """PostgreSQL: the head moved, the entries chained and inserted, in one statement.

    The head's upsert is a data-modifying CTE; a recursive CTE walks the entries (passed as
    arrays, in order) from the hash it returns, each entry's hash the SHA-256 of its
    canonical text with the previous hash and its seq put in (``Pieces``); the INSERT takes
    the chain. The hashes are the ones Python computes on SQLite (``Pieces.hash``)."""
    text_array = TextList()
    given = (
        func.unnest(
            *(
                bindparam(name, type_=text_array)
                for name in ("actors", "actions", "subject_types", "subject_ids", "changes")
            ),
            *(bindparam(name, type_=text_array) for name in ("befores", "middles", "afters")),
        )
        .table_valued(
            "actor",
            "action",
            "subject_type",
            "subject_id",
            "changes",
            "before",
            "middle",
            "after",
            with_ordinality="n",
        )
        .render_derived(name="given")
    )
    entries = select(given).cte("entries")
    head = _HEAD_MOVED.cte("head")
    first = select(
        cast(literal_column("0"), BigInteger).label("n"),
        (head.c.seq - bindparam("count")).label("seq"),
        cast(head.c.hash, Text).label("hash"),
        cast(null(), Text).label("prev_hash"),
    ).cte("chain", recursive=True)
    seq = first.c.seq + literal_column("1", BigInteger)
    canonical_text = (
        entries.c.before + first.c.hash + entries.c.middle + cast(seq, Text) + entries.c.after
    )
    chain = first.union_all(
        select(
            entries.c.n,
            seq,
            func.encode(
                func.sha256(func.convert_to(canonical_text, literal_column("'UTF8'"))),
                literal_column("'hex'"),
            ),
            first.c.hash,
        ).select_from(first.join(entries, entries.c.n == first.c.n + literal_column("1")))
    )
    rows = select(
        bindparam("organization_id", type_=_E.organization_id.type).label("organization_id"),
        chain.c.seq,
        bindparam("recorded_at", type_=_E.recorded_at.type).label("recorded_at"),
        cast(entries.c.actor, _E.actor.type).label("actor"),
        entries.c.action,
        entries.c.subject_type,
        entries.c.subject_id,
        cast(entries.c.changes, _E.changes.type).label("changes"),
        chain.c.prev_hash,
        chain.c.hash,
    ).select_from(chain.join(entries, entries.c.n == chain.c.n))
    columns = [c.key for c in ENTRIES.c]
    appended = insert(ENTRIES).from_select(columns, rows).add_cte(head)
    if not keyed:
        return Sql(appended.returning(_E.seq, _E.hash))
    # A write under an Idempotency-Key: its answer is stored by the same statement, and
    # ``kept`` says whether it was (1), or the key was taken already (0).
    kept = keys.STORE.cte("kept")
    count = select(func.count()).select_from(kept).scalar_subquery()
    return Sql(appended.add_cte(kept).returning(_E.seq, _E.hash, count.label("kept")))


_APPEND = _append_in_one_statement()
_APPEND_KEYED = _append_in_one_statement(keyed=True)
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


def _json(value: Any) -> tuple[str, str]:
    """The JSON text a value is stored as, and the canonical text of the value it reads back
    as (tuples as lists…): the hash covers exactly what a verifier will read."""
    stored = _ENCODE(value)
    if _same_in_json(value) and _utf8(stored):
        return stored, stored  # the C encoder wrote RFC 8785's bytes
    return stored, rfc8785.dumps(json.loads(stored)).decode()


def _utf8(text: str) -> bool:
    """No lone surrogate (which rfc8785 refuses in its own terms)."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


class Pieces(NamedTuple):
    """An entry as it is stored, and its canonical text around what the chain puts in:
    ``before + prev_hash + middle + str(seq) + after`` is ``canonical(document(row))`` (RFC
    8785 orders the members by name: action, actor, changes, organizationId, prevHash,
    recordedAt, seq, subject)."""

    actor: str  # JSON text
    action: str
    subject_type: str
    subject_id: str
    changes: str  # JSON text
    before: str
    middle: str
    after: str

    def hash(self, prev_hash: str, seq: int) -> str:
        text = f"{self.before}{prev_hash}{self.middle}{seq}{self.after}"
        return hashlib.sha256(text.encode()).hexdigest()


def pieces(
    organization_id: int, recorded_at: dt.datetime, entries: Sequence[Entry]
) -> list[Pieces]:
    """The entries of one append, all recorded at ``recorded_at``, as ``Pieces``."""
    organization = _json(organization_id)[1]
    middle = f'","recordedAt":"{format_datetime(recorded_at)}","seq":'
    actors: dict[int, tuple[str, str]] = {}  # one transaction's entries share their actor
    made = []
    for entry in entries:
        actor = actors.get(id(entry.actor))
        if actor is None:
            actor = actors[id(entry.actor)] = _json(entry.actor)
        changes, changes_text = _json(entry.changes)
        subject_id = str(entry.subject_id)
        made.append(
            Pieces(
                actor=actor[0],
                action=entry.action,
                subject_type=entry.subject_type,
                subject_id=subject_id,
                changes=changes,
                before=(
                    f'{{"action":{_string(entry.action)},"actor":{actor[1]},'
                    f'"changes":{changes_text},"organizationId":{organization},"prevHash":"'
                ),
                middle=middle,
                after=(
                    f',"subject":{{"id":{_string(subject_id)},'
                    f'"type":{_string(entry.subject_type)}}}}}'
                ),
            )
        )
    return made


def _string(text: str) -> str:
    """A string's canonical JSON (``_json`` for a string, quicker)."""
    if text.isalnum() and text.isascii():  # ids, actions, subject types
        return f'"{text}"'
    written = json.dumps(text, ensure_ascii=False)
    return written if _utf8(written) else rfc8785.dumps(text).decode()


async def append(db: Executor, organization_id: int, entries: Sequence[Entry]) -> Head:
    """Append ``entries`` to the organisation's journal now, in the executor's transaction:
    one statement on PostgreSQL (``_APPEND``), two on SQLite (the head, then the entries,
    chained here). The new head."""
    return (await _append(db, organization_id, entries, None))[0]


async def _append(
    db: Executor, organization_id: int, entries: Sequence[Entry], key: dict[str, Any] | None
) -> tuple[Head, bool]:
    """``append``; on PostgreSQL with ``key`` (``idempotency.repository.store``'s
    arguments), the answer stored by the same statement, and whether it was."""
    now = _milliseconds(utcnow())
    parts = pieces(organization_id, now, entries)
    if db.postgresql:
        appended = await db.all(
            _APPEND if key is None else _APPEND_KEYED,
            **{**(key or {}), "organization_id": organization_id},
            count=len(parts),
            genesis=GENESIS,
            recorded_at=now,
            **{
                name: [getattr(p, field) for p in parts]
                for name, field in (
                    ("actors", "actor"),
                    ("actions", "action"),
                    ("subject_types", "subject_type"),
                    ("subject_ids", "subject_id"),
                    ("changes", "changes"),
                    ("befores", "before"),
                    ("middles", "middle"),
                    ("afters", "after"),
                )
            },
        )
        last_row = max(appended)
        return Head(last_row[0], last_row[1]), key is not None and bool(last_row[2])
    last, previous = await db.first(
        _MOVE_HEAD, organization_id=organization_id, count=len(parts), genesis=GENESIS
    )
    rows = []
    for seq, p in enumerate(parts, start=last - len(parts) + 1):
        digest = p.hash(previous, seq)
        rows.append(
            {
                "organization_id": organization_id,
                "seq": seq,
                "recorded_at": now,
                "actor": json.loads(p.actor),
                "action": p.action,
                "subject_type": p.subject_type,
                "subject_id": p.subject_id,
                "changes": json.loads(p.changes),
                "prev_hash": previous,
                "hash": digest,
            }
        )
        previous = digest
    if len(rows) == 1:
        await db.execute(_INSERT, **rows[0])
    else:
        await db.many(_INSERT, rows)
    return Head(last, previous), False


async def flush(db: Executor) -> None:
    """Append what the transaction recorded (``record``), each organisation at once."""
    pending, db.journal = db.journal, {}
    for organization_id, entries in pending.items():
        await append(db, organization_id, entries)


async def flush_with_key(db: Executor, key: dict[str, Any]) -> bool:
    """Append what the transaction recorded now, and store a keyed request's answer
    (``idempotency.repository.store``'s arguments): in the journal's own statement on
    PostgreSQL when the transaction journals for the key's organisation (no statement
    more), else by the store's. Whether the answer was stored (``False``: the key was taken,
    and the transaction must be rolled back)."""
    pending, db.journal = db.journal, {}
    kept: bool | None = None
    for organization_id, entries in pending.items():
        if db.postgresql and organization_id == key["organization_id"] and kept is None:
            kept = (await _append(db, organization_id, entries, key))[1]
        else:
            await append(db, organization_id, entries)
    if kept is None:
        kept = await keys.store(db, **key)
    return kept


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
