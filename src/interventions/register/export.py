"""The register as an archive an inspector checks offline (``verify_register.py`` inside).

A zip file written to disk as it is built (pages of entries, one signature file at a time:
memory stays bounded), holding:

- ``journal.jsonl``: the organisation's whole journal up to its head, one RFC 8785 object a
  line, each with its ``hash`` (the chain cannot be checked from a subset);
- ``checkpoints.json``, ``keys.json``: the signed heads and the keys that signed them;
- ``export.json``: the organisation, the head, when, and the signature files included;
- ``signatures/<file id>.<ext>``: the signature images of the interventions (of one site's);
- ``site.json`` (for one site): the site, its interventions and the seqs of their entries;
- ``verify_register.py`` and ``README.txt``: the verifier and how to run it.
"""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import anyio.to_thread

from interventions.db import Executor, utcnow
from interventions.errors import Unprocessable
from interventions.register import journal
from interventions.register import repository as repo
from interventions.register.checkpoints import as_json
from interventions.storage.service import Storage
from interventions.wire import format_datetime

PAGE_SIZE = 1000
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
VERIFIER = "verify_register.py"


class UnknownSite(Unprocessable):
    def __init__(self, site_id: int) -> None:
        super().__init__(
            f"Site {site_id} does not exist in this organisation.",
            errors=[{"field": "siteId", "message": f"Unknown site: {site_id}."}],
        )


@dataclass
class ExportSummary:
    organization_id: int
    site_id: int | None
    entries: int = 0
    checkpoints: int = 0
    signature_files: list[str] = field(default_factory=list)
    missing_signature_files: list[str] = field(default_factory=list)


def verifier_source() -> bytes:
    """The offline verifier, as shipped in the package."""
    return (resources.files("interventions.register.verifier") / VERIFIER).read_bytes()


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"


def _readme(summary: ExportSummary, head: dict[str, Any] | None, site: Any, at: str) -> str:
    up_to = f"entry {head['seq']}" if head else "no entry"
    about = (
        f"\nSite {site.id} ({site.name}): site.json lists its interventions and the seqs of "
        "the journal entries about them; signatures/ holds their signature images.\n"
        if site is not None
        else "\nsignatures/ holds the signature images of the organisation's interventions.\n"
    )
    return f"""Register of organisation {summary.organization_id}, exported {at}
(the journal up to {up_to}: {summary.entries} entries, {summary.checkpoints} checkpoints).
{about}
To check this archive you need Python 3.11 or later and the "cryptography" package
(python3 -m pip install cryptography), nothing else, and no access to the service:

    python3 verify_register.py register.zip      # the archive as it is
    python3 verify_register.py                   # or, once unzipped, in its folder

It prints "OK: N entries, M checkpoints" and exits with status 0, or names the first
problem ("FAILED: entry 17 was altered (hash mismatch)") and exits with status 1.

What it checks: every entry of journal.jsonl is linked to the previous one (prevHash) and
hashes (SHA-256 of its RFC 8785 canonical JSON, without its "hash") to its hash, with seq
1, 2, 3... and no gap up to the head in export.json; every checkpoint in checkpoints.json is
signed (Ed25519) by a key of keys.json and names the hash of the entry at its seq; an
RFC 3161 time-stamp token, if a checkpoint has one, covers the checkpoint (its certificate's
trust is for you to check: openssl ts -verify); and each file of signatures/ whose SHA-256
the journal recorded has that SHA-256.

What it cannot check alone: that keys.json holds the service's real keys. Compare them with
the keys the service publishes (GET /register/v1/keys, no login needed) or with a printed
register's checkpoint (its QR code points to GET /register/v1/checkpoints/<id>).
"""


async def write_export(
    db: Executor,
    storage: Storage,
    organization_id: int,
    path: Path,
    *,
    site_id: int | None = None,
    now: dt.datetime | None = None,
) -> ExportSummary:
    """Write the organisation's register (of one site, ``site_id``) to the zip ``path``.

    Read as verification reads (checkpoints, keys, head, then entries up to the head), so
    that what is appended meanwhile is simply left out.
    """
    site = None
    if site_id is not None:
        site = await repo.site(db, organization_id, site_id)
        if site is None:
            raise UnknownSite(site_id)
    summary = ExportSummary(organization_id, site_id)
    checkpoints = [as_json(r) for r in await repo.checkpoints(db, organization_id)]
    keys = [
        {
            "keyId": k.key_id,
            "algorithm": k.algorithm,
            "publicKey": k.public_key,
            "createdAt": format_datetime(k.created_at),
            "retiredAt": None if k.retired_at is None else format_datetime(k.retired_at),
        }
        for k in await repo.keys(db)
    ]
    head_row = await repo.head(db, organization_id)
    head = None if head_row is None else {"seq": head_row.seq, "hash": head_row.hash}
    files = await repo.signature_files(db, organization_id, site_id)
    interventions: list[int] = []
    if site_id is not None:
        interventions = await repo.site_interventions(db, organization_id, site_id)
    about = {("intervention", str(i)) for i in interventions}
    about |= {("file", f.id) for f in files}
    seqs: list[int] = []
    exported_at = format_datetime(now or utcnow())
    summary.checkpoints = len(checkpoints)

    archive = await anyio.to_thread.run_sync(
        lambda: zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED)
    )
    try:
        handle = await anyio.to_thread.run_sync(
            lambda: archive.open("journal.jsonl", "w", force_zip64=True)
        )
        try:
            after = 0
            while True:
                rows = await repo.page_of_entries(
                    db,
                    organization_id,
                    after=after,
                    limit=PAGE_SIZE,
                    up_to=None if head is None else head["seq"],
                )
                lines = []
                for row in rows:
                    document = journal.document(row)
                    lines.append(journal.canonical({**document, "hash": row.hash}) + b"\n")
                    if (row.subject_type, row.subject_id) in about:
                        seqs.append(row.seq)
                summary.entries += len(rows)
                await anyio.to_thread.run_sync(handle.write, b"".join(lines))
                if len(rows) < PAGE_SIZE:
                    break
                after = rows[-1].seq
        finally:
            await anyio.to_thread.run_sync(handle.close)

        for stored in files:
            try:
                data = await anyio.to_thread.run_sync(storage.read, stored)
            except FileNotFoundError:
                summary.missing_signature_files.append(stored.id)
                continue
            name = f"signatures/{stored.id}.{EXTENSIONS.get(stored.mime_type, 'bin')}"
            await anyio.to_thread.run_sync(archive.writestr, name, data)
            summary.signature_files.append(stored.id)

        small = {
            "checkpoints.json": _json(checkpoints),
            "keys.json": _json(keys),
            "export.json": _json(
                {
                    "organizationId": organization_id,
                    "siteId": site_id,
                    "exportedAt": exported_at,
                    "head": head,
                    "entries": summary.entries,
                    "checkpoints": summary.checkpoints,
                    "signatureFiles": summary.signature_files,
                    "missingSignatureFiles": summary.missing_signature_files,
                }
            ),
            VERIFIER: verifier_source(),
            "README.txt": _readme(summary, head, site, exported_at).encode("utf-8"),
        }
        if site is not None:
            small["site.json"] = _json(
                {"id": site.id, "name": site.name, "interventionIds": interventions, "seqs": seqs}
            )
        for name, content in small.items():
            await anyio.to_thread.run_sync(archive.writestr, name, content)
    finally:
        await anyio.to_thread.run_sync(archive.close)
    return summary
