#!/usr/bin/env python3
"""Check an exported register offline: python3 verify_register.py [ARCHIVE.zip | DIRECTORY]

Needs nothing but Python 3.11 or later and the ``cryptography`` package
(``pip install cryptography``); no access to the service. Without an argument it checks the
directory it sits in (the unzipped archive).

What it checks, and what it prints ("OK: N entries, M checkpoints", or the first problem;
exit status 0 or 1):

- ``journal.jsonl``: one entry per line, seq 1, 2, 3… with no gap; each entry's hash is the
  SHA-256 of the RFC 8785 canonical JSON of the entry without its ``hash`` member; each
  entry's ``prevHash`` is the previous entry's hash (64 zeros for the first);
- ``export.json``: its ``head`` (the journal's last entry when exported) is the last line;
- ``checkpoints.json``: each checkpoint is signed (Ed25519, over the canonical JSON of its
  ``organizationId``, ``seq``, ``hash``, ``signedAt`` and ``keyId``) by a key of
  ``keys.json``, and names the hash of the entry at its seq; its RFC 3161 time-stamp token,
  if any, covers it (see ``timestamp_problem`` for exactly what is checked);
- ``signatures/``: each file whose SHA-256 the journal recorded has that SHA-256.

The service runs the same checks (``ChainChecker``) on its database: ``interventions
register verify`` and this script name the same first problem.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS = "0" * 64
MAX_SAFE_INTEGER = 2**53 - 1

# --- RFC 8785 (JSON Canonicalization Scheme) for the values a journal holds ----------------
# Objects, arrays, strings, integers within ±(2^53 - 1), booleans and null. The journal holds
# no floats: one is refused rather than serialised in a way that might differ.

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n"}
_SHORT_ESCAPES |= {"\f": "\\f", "\r": "\\r"}


def _string(value: str) -> str:
    out = ['"']
    for char in value:
        escaped = _SHORT_ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif char < " ":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _canonical(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise ValueError(f"integer {value} is outside the I-JSON range")
        out.append(str(value))
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _canonical(item, out)
        out.append("]")
    elif isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise ValueError(f"object key {key!r} is not a string")
        out.append("{")
        # Members sorted by their names' UTF-16 code units (big-endian bytes sort alike).
        for index, key in enumerate(
            sorted(value, key=lambda k: k.encode("utf-16-be", "surrogatepass"))
        ):
            if index:
                out.append(",")
            out.append(_string(key))
            out.append(":")
            _canonical(value[key], out)
        out.append("}")
    else:
        raise ValueError(f"{type(value).__name__} values have no place in the journal")


def canonical(value: Any) -> bytes:
    """The RFC 8785 canonical JSON of ``value`` (UTF-8 bytes)."""
    out: list[str] = []
    _canonical(value, out)
    return "".join(out).encode("utf-8")  # a lone surrogate is refused here


def entry_hash(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(document)).hexdigest()


def checkpoint_document(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint's signature covers."""
    return {
        "organizationId": checkpoint["organizationId"],
        "seq": checkpoint["seq"],
        "hash": checkpoint["hash"],
        "signedAt": checkpoint["signedAt"],
        "keyId": checkpoint["keyId"],
    }


# --- RFC 3161 time-stamp tokens, read with a minimal DER reader ----------------------------

_OID_SHA256 = "2.16.840.1.101.3.4.2.1"
_OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
DIGESTS_BY_OID: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "1.3.14.3.2.26": hashes.SHA1,
    _OID_SHA256: hashes.SHA256,
    "2.16.840.1.101.3.4.2.2": hashes.SHA384,
    "2.16.840.1.101.3.4.2.3": hashes.SHA512,
}


@dataclass(frozen=True)
class _Der:
    """One DER element: its tag, and where its whole encoding and its content lie."""

    data: bytes
    tag: int
    start: int  # first byte of the tag
    content: int  # first byte of the content
    end: int

    @property
    def raw(self) -> bytes:
        return self.data[self.start : self.end]

    @property
    def value(self) -> bytes:
        return self.data[self.content : self.end]

    def children(self) -> list[_Der]:
        found = []
        offset = self.content
        while offset < self.end:
            child = _read(self.data, offset, self.end)
            found.append(child)
            offset = child.end
        return found


def _read(data: bytes, offset: int, limit: int) -> _Der:
    if offset + 2 > limit:
        raise ValueError("truncated DER")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise ValueError("high tag numbers are not used here")
    length = data[offset + 1]
    content = offset + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or content + count > limit:
            raise ValueError("bad DER length")
        length = int.from_bytes(data[content : content + count], "big")
        content += count
    end = content + length
    if end > limit:
        raise ValueError("truncated DER")
    return _Der(data, tag, offset, content, end)


def _oid(element: _Der) -> str:
    if element.tag != 0x06:
        raise ValueError("not an OBJECT IDENTIFIER")
    body = element.value
    parts: list[int] = []
    current = 0
    for byte in body:
        current = (current << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(current)
            current = 0
    first = min(parts[0] // 40, 2)
    return ".".join(str(p) for p in [first, parts[0] - 40 * first, *parts[1:]])


def verify_with_certificate(
    certificate: x509.Certificate, signature: bytes, data: bytes, digest: hashes.HashAlgorithm
) -> bool:
    public = certificate.public_key()
    try:
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, data, padding.PKCS1v15(), digest)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, data, ec.ECDSA(digest))
        elif isinstance(public, Ed25519PublicKey):
            public.verify(signature, data)
        else:
            return False
    except InvalidSignature:
        return False
    return True


def timestamp_problem(token_b64: str, signed_bytes: bytes) -> str | None:
    """Why an RFC 3161 token does not cover ``signed_bytes``, or ``None`` when it does.

    Checked: the token is a CMS SignedData whose TSTInfo's message imprint is the SHA-256 of
    ``signed_bytes``; the signer's ``messageDigest`` attribute is the digest of that TSTInfo;
    and the signature over the signed attributes verifies under the public key of a
    certificate the token carries. Not checked: that the certificate chains to an authority
    you trust, its validity period and revocation (``openssl ts -verify`` with the authority's
    CA certificate does that).
    """
    try:
        data = base64.b64decode(token_b64, validate=True)
        content_info = _read(data, 0, len(data))
        signed_data = content_info.children()[1].children()[0]
        parts = signed_data.children()
        encap = parts[2].children()
        tst_der = encap[1].children()[0].value
        tst = _read(tst_der, 0, len(tst_der)).children()
        imprint = tst[2].children()
        algorithm = _oid(imprint[0].children()[0])
        hashed = imprint[1].value
        certificates = [
            x509.load_der_x509_certificate(c.raw)
            for p in parts[3:]
            if p.tag == 0xA0
            for c in p.children()
        ]
        signer = parts[-1].children()[0].children()
    except (ValueError, IndexError) as exc:
        return f"is not a readable RFC 3161 token ({exc})"
    if algorithm != _OID_SHA256:
        return "does not use SHA-256"
    if hashed != hashlib.sha256(signed_bytes).digest():
        return "does not cover it (message imprint mismatch)"
    try:
        digest_oid = _oid(signer[2].children()[0])
        attributes = next(s for s in signer if s.tag == 0xA0)
        signature = signer[signer.index(attributes) + 2].value
        digests = [
            a.children()[1].children()[0].value
            for a in attributes.children()
            if _oid(a.children()[0]) == _OID_MESSAGE_DIGEST
        ]
    except (ValueError, IndexError, StopIteration) as exc:
        return f"is not a readable RFC 3161 token ({exc})"
    make = DIGESTS_BY_OID.get(digest_oid)
    if make is None:
        return f"uses an unknown digest ({digest_oid})"
    hasher = hashes.Hash(make())
    hasher.update(tst_der)
    if digests != [hasher.finalize()]:
        return "signature does not cover its content (message digest mismatch)"
    # The signature covers the attributes as a SET (tag 0x31), not as the [0] they are sent.
    signed_attributes = b"\x31" + attributes.raw[1:]
    if not any(
        verify_with_certificate(c, signature, signed_attributes, make()) for c in certificates
    ):
        return "signature is invalid"
    return None


# --- The checks, entry by entry ------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """The first thing found wrong: which entry (``seq``) or checkpoint, and what."""

    kind: str
    message: str
    seq: int | None = None
    checkpoint_id: str | None = None


def checkpoint_signature_problem(
    checkpoint: dict[str, Any], keys: dict[str, str], organization_id: int
) -> Problem | None:
    """Whether the checkpoint is signed by a published key (``keys``: id → raw base64)."""
    cid = str(checkpoint.get("id"))
    seq = checkpoint.get("seq")
    if checkpoint.get("organizationId") != organization_id:
        message = f"checkpoint {cid} belongs to organisation {checkpoint.get('organizationId')}"
        return Problem("checkpoint-organization", message, seq, cid)
    key = keys.get(str(checkpoint.get("keyId")))
    if key is None:
        message = f"checkpoint {cid} is signed by unknown key {checkpoint.get('keyId')}"
        return Problem("checkpoint-unknown-key", message, seq, cid)
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key, validate=True))
        signature = base64.b64decode(str(checkpoint.get("signature")), validate=True)
        public.verify(signature, canonical(checkpoint_document(checkpoint)))
    except (InvalidSignature, ValueError, KeyError):
        return Problem("checkpoint-signature", f"checkpoint {cid} signature invalid", seq, cid)
    return None


TimestampCheck = Callable[[str, bytes], str | None]


@dataclass
class ChainChecker:
    """Feed it an organisation's entries in seq order (``add``), then ``finish``: the first
    problem found, or ``None``. ``hash_entry`` recomputes an entry's hash from its document
    (the service passes its own, this script ``entry_hash``)."""

    organization_id: int
    keys: dict[str, str]
    checkpoints: list[dict[str, Any]]
    hash_entry: Callable[[dict[str, Any]], str] = entry_hash
    check_timestamp: TimestampCheck = timestamp_problem
    entries: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS
    problem: Problem | None = None
    _at: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for checkpoint in self.checkpoints:
            seq = checkpoint.get("seq")
            key = seq if isinstance(seq, int) and not isinstance(seq, bool) else -1
            self._at.setdefault(key, []).append(checkpoint)
        if -1 in self._at:
            cid = self._at[-1][0].get("id")
            self.problem = Problem("checkpoint-malformed", f"checkpoint {cid} has no seq")

    def add(self, document: dict[str, Any], stored_hash: str) -> Problem | None:
        """Check the next entry (its document as hashed, and the hash stored with it)."""
        if self.problem is None:
            self.problem = self._entry(document, stored_hash)
        return self.problem

    def _entry(self, document: dict[str, Any], stored_hash: str) -> Problem | None:
        expected = self.last_seq + 1
        seq = document.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            return Problem("malformed", f"the entry after entry {self.last_seq} has no seq")
        if document.get("organizationId") != self.organization_id:
            owner = document.get("organizationId")
            return Problem("foreign", f"entry {seq} belongs to organisation {owner}", seq)
        if seq < expected:
            return Problem("reordered", f"entries out of order at {seq}", seq)
        if seq > expected:
            return Problem("missing", f"entry {expected} is missing", expected)
        try:
            computed = self.hash_entry(document)
        except (ValueError, TypeError) as exc:
            return Problem("malformed", f"entry {seq} cannot be hashed ({exc})", seq)
        linked = document.get("prevHash") == self.last_hash
        if computed != stored_hash:
            if not linked:
                return Problem("reordered", f"entries out of order at {seq}", seq)
            return Problem("altered", f"entry {seq} was altered (hash mismatch)", seq)
        if not linked:
            message = f"entry {seq} does not follow entry {seq - 1} (prevHash mismatch)"
            return Problem("unlinked", message, seq)
        self.entries += 1
        self.last_seq, self.last_hash = seq, stored_hash
        for checkpoint in self._at.pop(seq, []):
            problem = self._checkpoint(checkpoint, stored_hash)
            if problem is not None:
                return problem
        return None

    def _checkpoint(self, checkpoint: dict[str, Any], entry_hash_: str) -> Problem | None:
        problem = checkpoint_signature_problem(checkpoint, self.keys, self.organization_id)
        if problem is not None:
            return problem
        cid, seq = str(checkpoint["id"]), checkpoint["seq"]
        if checkpoint["hash"] != entry_hash_:
            message = f"checkpoint {cid} does not match entry {seq} (hash mismatch)"
            return Problem("checkpoint-hash", message, seq, cid)
        token = checkpoint.get("timestampToken")
        if token:
            why = self.check_timestamp(str(token), canonical(checkpoint_document(checkpoint)))
            if why is not None:
                return Problem(
                    "checkpoint-timestamp", f"checkpoint {cid} timestamp {why}", seq, cid
                )
        return None

    def finish(self, head: dict[str, Any] | None) -> Problem | None:
        """After the last entry: the journal's head (``{"seq", "hash"}`` or ``None``) must be
        that entry, and no checkpoint may lie beyond it."""
        if self.problem is None:
            self.problem = self._finish(head)
        return self.problem

    def _finish(self, head: dict[str, Any] | None) -> Problem | None:
        if head is None:
            if self.entries:
                return Problem("head", "the journal's head is missing", self.last_seq)
        elif head.get("seq", 0) > self.last_seq:
            expected = self.last_seq + 1
            message = f"entry {expected} is missing (the head is at entry {head.get('seq')})"
            return Problem("missing", message, expected)
        elif head.get("seq") != self.last_seq or head.get("hash") != self.last_hash:
            message = f"the journal's head is not its last entry ({self.last_seq})"
            return Problem("head", message, self.last_seq)
        for seq in sorted(self._at):
            checkpoint = self._at[seq][0]
            cid = checkpoint.get("id")
            message = f"checkpoint {cid} is at entry {seq}, beyond the last entry {self.last_seq}"
            return Problem("checkpoint-beyond", message, seq, str(cid))
        return None


# --- Reading an export ----------------------------------------------------------------------


def _refuse_float(text: str) -> Any:
    raise ValueError(f"a number with a fraction or exponent ({text}) has no place here")


def _refuse_constant(text: str) -> Any:
    raise ValueError(f"{text} has no place here")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"member {key!r} appears twice")
        found[key] = value
    return found


def parse(text: str, *, floats: bool = False) -> Any:
    """JSON with no duplicate member, no NaN or Infinity, and no float unless ``floats``
    (journal lines: a float there is named at its entry, which cannot be hashed)."""
    return json.loads(
        text,
        parse_float=float if floats else _refuse_float,
        parse_constant=_refuse_constant,
        object_pairs_hook=_object,
    )


def refuse_floats(value: Any) -> None:
    """``ValueError`` if ``value`` holds a float anywhere, as ``canonical`` would raise."""
    if isinstance(value, float):
        raise ValueError("float values have no place in the journal")
    if isinstance(value, dict):
        for item in value.values():
            refuse_floats(item)
    elif isinstance(value, list):
        for item in value:
            refuse_floats(item)


class Archive:
    """The files of an export, from a zip file or a directory."""

    def __init__(self, path: Path) -> None:
        self.zip = zipfile.ZipFile(path) if path.is_file() else None
        self.root = path

    def names(self) -> list[str]:
        if self.zip is not None:
            return self.zip.namelist()
        return [p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()]

    def read(self, name: str) -> bytes:
        if self.zip is not None:
            return self.zip.read(name)
        return (self.root / name).read_bytes()

    def lines(self, name: str) -> Iterator[str]:
        if self.zip is not None:
            with self.zip.open(name) as handle:
                for raw in handle:
                    yield raw.decode("utf-8")
        else:
            with open(self.root / name, encoding="utf-8") as handle:
                yield from handle

    def json(self, name: str) -> Any:
        return parse(self.read(name).decode("utf-8"))


@dataclass
class Report:
    entries: int
    checkpoints: int
    problem: Problem | None
    notes: list[str]

    def summary(self) -> str:
        if self.problem is not None:
            return f"FAILED: {self.problem.message}"
        return f"OK: {self.entries} entries, {self.checkpoints} checkpoints"


def verify_archive(path: Path) -> Report:
    archive = Archive(path)
    manifest = archive.json("export.json")
    organization_id = manifest["organizationId"]
    keys = {k["keyId"]: k["publicKey"] for k in archive.json("keys.json")}
    checkpoints = archive.json("checkpoints.json")
    checker = ChainChecker(organization_id, keys, checkpoints)
    recorded: dict[str, str] = {}
    notes: list[str] = []
    for number, line in enumerate(archive.lines("journal.jsonl"), start=1):
        if not line.strip():
            continue
        try:
            entry = parse(line, floats=True)
            stored = entry.pop("hash")
        except (ValueError, KeyError, AttributeError) as exc:
            checker.problem = Problem("malformed", f"line {number} of journal.jsonl: {exc}")
            break
        if checker.add(entry, stored) is not None:
            break
        subject, changes = entry.get("subject") or {}, entry.get("changes")
        if subject.get("type") == "file" and isinstance(changes, dict):
            digest = changes.get("sha256")
            if isinstance(digest, str):
                recorded[str(subject.get("id"))] = digest
    problem = checker.finish(manifest["head"])
    checked = unchecked = 0
    if problem is None:
        for name in sorted(n for n in archive.names() if n.startswith("signatures/")):
            file_id = name.removeprefix("signatures/").split(".", 1)[0]
            digest = recorded.get(file_id)
            if digest is None:
                unchecked += 1
            elif hashlib.sha256(archive.read(name)).hexdigest() != digest:
                message = f"signature file {file_id} does not match the journal (sha256)"
                problem = Problem("signature-file", message)
                break
            else:
                checked += 1
        notes.append(
            f"signature files: {checked} match the SHA-256 the journal recorded, {unchecked} "
            "have no recorded SHA-256 (not checked)"
        )
        stamped = sum(1 for c in checkpoints if c.get("timestampToken"))
        notes.append(f"RFC 3161 time-stamp tokens checked: {stamped}")
    return Report(checker.entries, len(checkpoints), problem, notes)


def main(argv: list[str]) -> int:
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        print(__doc__)
        return 2
    path = Path(argv[1]) if len(argv) == 2 else Path(__file__).resolve().parent
    try:
        report = verify_archive(path)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        print(f"FAILED: {path} is not a readable register export ({exc})")
        return 1
    print(report.summary())
    for note in report.notes:
        print(f"  {note}")
    return 0 if report.problem is None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
