"""The journal's canonical JSON (register/journal.py ``canonical``) is RFC 8785's, byte for
byte, whichever encoder writes it: compared with the ``rfc8785`` package's on the values
entries hold and on the edge cases where the two encoders would differ."""

from __future__ import annotations

import datetime as dt
import enum
import json
import random
from types import SimpleNamespace
from typing import Any

import pytest
import rfc8785

from interventions.register import journal


class Kind(enum.IntEnum):
    CURATIVE = 2


class Verb(enum.StrEnum):
    VERIFY = "verify"


CHARACTERS = [
    *map(chr, range(0x20)),
    '"',
    "\\",
    "/",
    "\x7f",
    "é",
    "ß",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\uffff",
    "€",
    "😀",
    "\U0010ffff",
    "a",
    "Z",
    "0",
    " ",
]


def text(rng: random.Random) -> str:
    return "".join(rng.choice(CHARACTERS) for _ in range(rng.randint(0, 8)))


def value(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randrange(9 if depth < 3 else 6)
    if pick == 0:
        return None
    if pick == 1:
        return rng.choice([True, False])
    if pick == 2:
        return rng.choice([0, -1, 1, 2**53 - 1, -(2**53) + 1, rng.randint(-(10**12), 10**12)])
    if pick == 3:
        return text(rng)
    if pick == 4:
        return rng.choice([0.0, -0.0, 1.5, 1e21, 1e-7, 123.0, -2.5e-5, 1 / 3])
    if pick == 5:
        return rng.choice([Kind.CURATIVE, Verb.VERIFY])
    if pick == 6:
        return [value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if pick == 7:
        return tuple(value(rng, depth + 1) for _ in range(rng.randint(0, 3)))
    return {text(rng): value(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def entry_document(changes: Any) -> dict[str, Any]:
    return {
        "organizationId": 7,
        "seq": 1234,
        "recordedAt": "2026-12-07T11:00:00.123Z",
        "actor": {"type": "provider", "name": "Élodie Ñúñez", "userId": 3, "profileId": None},
        "action": "execute",
        "subject": {"type": "intervention", "id": "42"},
        "changes": changes,
        "prevHash": journal.GENESIS,
    }


def test_the_canonical_form_is_rfc_8785_on_any_json_value() -> None:
    rng = random.Random(8785)
    for _ in range(3000):
        document = entry_document(value(rng))
        assert journal.canonical(document) == rfc8785.dumps(document), document


@pytest.mark.parametrize(
    "changes",
    [
        {"status": {"from": 4, "to": 6}, "decision": 2, "decisionComment": "à reprendre\n"},
        {"siteRuleIds": {"from": [1, 2], "to": [2, 3]}, "scheduledStart": {"from": None}},
        {"😀": 1, "\uffff": 2, "a": 3},  # keys beyond the BMP: JCS's UTF-16 order
        {"\ue000": 1, "\U00010000": 2},
        {"size": 1.0, "ratio": 0.1},  # floats: ECMAScript's form
        {"nested": [{"b": 1, "a": [None, True, '\x00\x1f"\\']}]},
    ],
)
def test_the_canonical_form_is_rfc_8785_on_the_edge_cases(changes: dict[str, Any]) -> None:
    document = entry_document(changes)
    assert journal.canonical(document) == rfc8785.dumps(document)


@pytest.mark.parametrize("bad", [2**53, -(2**53), float("nan"), "\ud800", {1: "key"}])
def test_what_rfc_8785_refuses_is_refused(bad: Any) -> None:
    document = entry_document({"member": bad})
    with pytest.raises(rfc8785.CanonicalizationError):
        rfc8785.dumps(document)
    with pytest.raises(rfc8785.CanonicalizationError):
        journal.canonical(document)


def test_an_entrys_pieces_around_the_chain_make_its_canonical_form() -> None:
    """The append chains entries from ``journal.Pieces`` (in SQL on PostgreSQL): the pieces
    with the previous hash and the seq put in are the canonical form of the entry as it is
    read back, on any JSON value the changes may hold, and hash alike."""
    rng = random.Random(43)
    recorded = dt.datetime(2026, 12, 7, 11, 0, 0, 123000, tzinfo=dt.UTC)
    for i in range(2000):
        entry = journal.Entry(
            action=rng.choice(["execute", "verify", "é😀"]),
            subject_type=rng.choice(["intervention", "anomaly"]),
            subject_id=rng.choice([42, "42", "f" * 64]),
            changes={text(rng): value(rng) for _ in range(rng.randint(0, 4))},
            actor={"type": "user", "userId": i, "name": text(rng)},
        )
        (p,) = journal.pieces(7, recorded, [entry])
        prev = format(rng.getrandbits(256), "064x")
        row = SimpleNamespace(
            organization_id=7,
            seq=i + 1,
            recorded_at=recorded,
            actor=json.loads(p.actor),  # what the database gives back
            action=entry.action,
            subject_type=entry.subject_type,
            subject_id=str(entry.subject_id),
            changes=json.loads(p.changes),
            prev_hash=prev,
        )
        whole = f"{p.before}{prev}{p.middle}{i + 1}{p.after}".encode()
        assert whole == journal.canonical(journal.document(row)), entry
        assert p.hash(prev, i + 1) == journal.entry_hash(journal.document(row))
