"""The export (issue 11, item 4): the register as a zip an inspector checks offline, over HTTP
and from the CLI, with the signature files, and the verifier that needs only Python and
cryptography."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from interventions.config import Settings
from interventions.db import Database
from interventions.register import export, journal
from tests.factories import Factory, Org
from tests.helpers import (
    PNG,
    REGISTER,
    UNPLANNED,
    assert_problem,
    ok,
    record_entries,
    register_command,
    run_exported_verifier,
)

EXPORT = f"{REGISTER}/rs/export"


async def _signed_intervention(
    client: httpx.AsyncClient, database: Database, org: Org, site_id: int, image: bytes
) -> tuple[int, str]:
    """An executed intervention on ``site_id`` with its uploaded signature (whose upload the
    journal records with its SHA-256); (intervention, file id)."""
    r = await client.post(
        UNPLANNED,
        json={
            "companyId": org.company_ids[0],
            "siteIds": [site_id],
            "ruleIds": [org.rule_ids[0]],
            "signature": {"name": "s.png", "mimeType": "image/png", "size": len(image)},
            "provider": {"firstName": "Ann", "lastName": "Lee"},
        },
        headers=org.manager.headers,
    )
    assert r.status_code == 201, r.text
    url = r.json()["presignedUrl"]
    file_id = url.split("?")[0].rsplit("/", 1)[1]
    put = await client.put(url, content=image, headers={"content-type": "image/png"})
    assert put.status_code == 200, put.text
    return int(r.json()["data"]["id"]), file_id


def _entries(archive: zipfile.ZipFile) -> list[dict[str, Any]]:
    lines = archive.read("journal.jsonl").decode().splitlines()
    entries = [json.loads(line) for line in lines]
    for line, entry in zip(lines, entries, strict=True):
        assert line.encode() == journal.canonical(entry)  # one canonical object a line
        digest = entry.pop("hash")
        assert journal.entry_hash(entry) == digest
    return entries


async def test_an_export_of_one_site_over_http(
    client: httpx.AsyncClient,
    factory: Factory,
    database: Database,
    settings: Settings,
    tmp_path: Path,
) -> None:
    org = await factory.org()
    here, there = org.site_ids[0], org.site_ids[1]
    image_here, image_there = PNG[:40], PNG[:50]
    ours, file_here = await _signed_intervention(client, database, org, here, image_here)
    _, file_there = await _signed_intervention(client, database, org, there, image_there)
    ok(await client.post(f"{REGISTER}/rs/checkpoints", headers=org.admin.headers), 201)

    r = await client.get(EXPORT, params={"siteId": here}, headers=org.manager.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert f"register-{org.id}-site-{here}.zip" in r.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    names = set(archive.namelist())
    assert names == {
        "journal.jsonl",
        "checkpoints.json",
        "keys.json",
        "export.json",
        "site.json",
        "verify_register.py",
        "README.txt",
        f"signatures/{file_here}.png",
    }
    assert archive.read(f"signatures/{file_here}.png") == image_here
    entries = _entries(archive)  # the whole journal: the chain needs every entry
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert {e["subject"]["id"] for e in entries} >= {file_here, file_there, str(ours)}
    site = json.loads(archive.read("site.json"))
    assert site["id"] == here
    assert site["interventionIds"] == [ours]
    about = {
        (e["subject"]["type"], e["subject"]["id"]) for e in entries if e["seq"] in site["seqs"]
    }
    assert about == {("intervention", str(ours)), ("file", file_here)}
    manifest = json.loads(archive.read("export.json"))
    last = journal.entry_hash(entries[-1])
    assert manifest["head"] == {"seq": len(entries), "hash": last}
    assert manifest["signatureFiles"] == [file_here]
    assert archive.read("verify_register.py") == export.verifier_source()
    readme = archive.read("README.txt").decode()
    assert "python3 verify_register.py" in readme
    assert "cryptography" in readme

    (tmp_path / "register.zip").write_bytes(r.content)
    code, line = await asyncio.to_thread(
        run_exported_verifier, tmp_path / "register.zip", tmp_path / "check"
    )
    assert (code, line) == (0, f"OK: {len(entries)} entries, 1 checkpoints")
    about_file = [e for e in entries if e["subject"] == {"type": "file", "id": file_here}]
    digests = [e["changes"]["sha256"] for e in about_file if "sha256" in e["changes"]]
    assert digests == [hashlib.sha256(image_here).hexdigest()]


async def test_a_signature_file_that_does_not_match_the_journal_is_named(
    client: httpx.AsyncClient,
    factory: Factory,
    database: Database,
    settings: Settings,
    tmp_path: Path,
) -> None:
    org = await factory.org()
    _, file_id = await _signed_intervention(client, database, org, org.site_ids[0], PNG[:40])
    # The stored bytes changed behind the service's back: the journal recorded others.
    stored = settings.storage_dir / str(org.id) / file_id
    stored.write_bytes(PNG[:39] + b"!")
    archive = tmp_path / "all.zip"
    result = await register_command(settings, "export", "--organization", str(org.id), str(archive))
    assert result.exit_code == 0, result.output
    assert "1 signature files" in " ".join(result.output.split())
    code, line = await asyncio.to_thread(run_exported_verifier, archive, tmp_path / "check")
    assert (code, line) == (
        1,
        f"FAILED: signature file {file_id} does not match the journal (sha256)",
    )


async def test_who_may_export_and_what(
    client: httpx.AsyncClient, factory: Factory, database: Database
) -> None:
    org, other = await factory.org(), await factory.org()
    assert_problem(await client.get(EXPORT), 401)
    assert_problem(await client.get(EXPORT, headers=org.viewer.headers), 403)
    problem = assert_problem(
        await client.get(EXPORT, params={"siteId": other.site_ids[0]}, headers=org.admin.headers),
        422,
    )
    assert problem["errors"][0]["field"] == "siteId"
    assert_problem(await client.get(EXPORT, params={"siteId": "x"}, headers=org.admin.headers), 400)
    # An organisation with no journal yet exports an empty, valid register.
    r = await client.get(EXPORT, headers=org.admin.headers)
    assert r.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    assert archive.read("journal.jsonl") == b""
    assert json.loads(archive.read("export.json"))["head"] is None


async def test_the_export_command_reads_the_journal_in_pages(
    factory: Factory,
    database: Database,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    org = await factory.org()
    await record_entries(database, org.id, 10)
    monkeypatch.setattr(export, "PAGE_SIZE", 3)
    archive = tmp_path / "out.zip"
    result = await register_command(settings, "export", "--organization", str(org.id), str(archive))
    assert result.exit_code == 0, result.output
    assert f"{archive}: 10 entries, 0 checkpoints, 0 signature files" in " ".join(
        result.output.split()
    )
    with zipfile.ZipFile(archive) as opened:
        assert [e["seq"] for e in _entries(opened)] == list(range(1, 11))
    code, line = await asyncio.to_thread(run_exported_verifier, archive, tmp_path / "check")
    assert (code, line) == (0, "OK: 10 entries, 0 checkpoints")

    unknown = await register_command(
        settings, "export", "--organization", str(org.id), "--site", "999999999", str(archive)
    )
    assert unknown.exit_code == 1
    assert "Site 999999999 does not exist in this organisation" in unknown.output
    missing = await register_command(
        settings, "export", "--organization", str(org.id), str(tmp_path / "nowhere" / "x.zip")
    )
    assert missing.exit_code == 2
    assert "is not a directory" in missing.output
