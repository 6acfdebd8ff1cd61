"""The offline verifier stands alone: it imports only the standard library and
cryptography, its RFC 8785 canonical JSON is the ``rfc8785`` package's on every value a
journal holds, and it refuses what a journal never holds (issue 11, item 4)."""

from __future__ import annotations

import ast
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from interventions.register.verifier import verify_register
from interventions.register.verifier.verify_register import (
    GENESIS,
    ChainChecker,
    canonical,
    entry_hash,
    parse,
    verify_archive,
)

SOURCE = Path(verify_register.__file__)
SAFE = 2**53 - 1

# Every JSON value a journal entry can hold: no floats.
keys = st.text(max_size=8)
leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-SAFE, max_value=SAFE)
    | st.text()
    | st.text(alphabet=st.characters(max_codepoint=0x7F))
    | st.sampled_from(["\u2028", "\x7f", "\ud7ff\ue000", "😀", "é", "\x00\x1f", '"\\/'])
)
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=30,
)


def test_the_verifier_imports_only_the_standard_library_and_cryptography() -> None:
    tree = ast.parse(SOURCE.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative import: the script runs on its own"
            imported.add((node.module or "").split(".")[0])
    outside = {name for name in imported if name not in sys.stdlib_module_names}
    assert outside == {"cryptography"}, outside
    assert "__future__" in imported  # of the standard library, and needed on 3.11


@settings(max_examples=400, deadline=None)
@given(values)
def test_canonical_json_is_rfc_8785(value: Any) -> None:
    assert canonical(value) == rfc8785.dumps(value)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(), st.integers(-SAFE, SAFE), min_size=2, max_size=12))
def test_members_are_sorted_by_utf16_code_units(value: dict[str, int]) -> None:
    assert canonical(value) == rfc8785.dumps(value)


@pytest.mark.parametrize(
    "value",
    [1.5, 2**53, -(2**53), {"a": float("nan")}, ["\ud800"], {1: "not a string key"}, b"x"],
)
def test_what_a_journal_never_holds_is_refused(value: Any) -> None:
    with pytest.raises(ValueError):
        canonical(value)


@pytest.mark.parametrize(
    "text",
    ['{"a": 1.0}', '{"a": 1e3}', '{"a": NaN}', '{"a": 1, "a": 2}'],
)
def test_reading_refuses_floats_and_duplicate_members(text: str) -> None:
    with pytest.raises(ValueError):
        parse(text)


def test_a_float_in_an_entry_is_named_at_its_entry() -> None:
    entries = _chain(3)
    checker = ChainChecker(7, {}, [])
    document = {k: v for k, v in entries[0].items() if k != "hash"}
    assert checker.add(document, entries[0]["hash"]) is None
    line = canonical(entries[1]).decode().replace('"n":2', '"n":2.5')
    document = parse(line, floats=True)
    stored = document.pop("hash")
    problem = checker.add(document, stored)
    assert problem is not None
    assert problem.message == (
        "entry 2 cannot be hashed (float values have no place in the journal)"
    )


def _chain(count: int, organization_id: int = 7) -> list[dict[str, Any]]:
    entries, previous = [], GENESIS
    for seq in range(1, count + 1):
        document = {
            "organizationId": organization_id,
            "seq": seq,
            "recordedAt": "2026-12-07T10:00:00.000Z",
            "actor": {"type": "system", "name": "test"},
            "action": "update",
            "subject": {"type": "intervention", "id": str(seq)},
            "changes": {"n": seq},
            "prevHash": previous,
        }
        previous = entry_hash(document)
        entries.append({**document, "hash": previous})
    return entries


def _write(directory: Path, entries: list[dict[str, Any]], head: dict[str, Any] | None) -> Path:
    directory.mkdir()
    lines = [canonical(e).decode() for e in entries]
    (directory / "journal.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (directory / "export.json").write_text(json.dumps({"organizationId": 7, "head": head}))
    (directory / "keys.json").write_text("[]")
    (directory / "checkpoints.json").write_text("[]")
    return directory


def test_a_journal_file_with_lines_out_of_order_or_foreign_is_named(tmp_path: Path) -> None:
    entries = _chain(5)
    head = {"seq": 5, "hash": entries[-1]["hash"]}
    assert verify_archive(_write(tmp_path / "ok", entries, head)).summary() == (
        "OK: 5 entries, 0 checkpoints"
    )
    swapped = [entries[0], entries[2], entries[1], *entries[3:]]
    report = verify_archive(_write(tmp_path / "swapped", swapped, head))
    assert report.summary() == "FAILED: entry 2 is missing"
    duplicated = [*entries[:3], entries[2], *entries[3:]]
    report = verify_archive(_write(tmp_path / "twice", duplicated, head))
    assert report.summary() == "FAILED: entries out of order at 3"
    foreign = _chain(5, organization_id=8)
    report = verify_archive(_write(tmp_path / "foreign", foreign, head))
    assert report.summary() == "FAILED: entry 1 belongs to organisation 8"
    report = verify_archive(_write(tmp_path / "headless", entries, None))
    assert report.summary() == "FAILED: the journal's head is missing"


def test_a_checkpoint_beyond_the_journal_is_named() -> None:
    entries = _chain(2)
    checker = ChainChecker(7, {}, [{"id": "cp", "seq": 3, "organizationId": 7}])
    for entry in entries:
        document = {k: v for k, v in entry.items() if k != "hash"}
        assert checker.add(document, entry["hash"]) is None
    problem = checker.finish({"seq": 2, "hash": entries[-1]["hash"]})
    assert problem is not None
    assert problem.message == "checkpoint cp is at entry 3, beyond the last entry 2"


def test_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entries = _chain(3)
    directory = _write(tmp_path / "x", entries, {"seq": 3, "hash": entries[-1]["hash"]})
    assert verify_register.main(["verify_register.py", str(directory)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: 3 entries, 0 checkpoints\n")
    assert "0 have no recorded SHA-256" in out
    assert verify_register.main(["verify_register.py", str(tmp_path / "missing")]) == 1
    assert "is not a readable register export" in capsys.readouterr().out
    assert verify_register.main(["verify_register.py", "--help"]) == 2
    assert hashlib.sha256(SOURCE.read_bytes()).hexdigest()  # the script is a plain file
