"""RFC 3161 time-stamps (optional: ``INTERVENTIONS_TSA_URL``), read and written with
asn1crypto.

asn1crypto (pure Python, no compiled part) carries the RFC 3161 (``tsp``) and CMS (``cms``)
structures both ways: the service builds its ``TimeStampReq`` and reads the authority's
``TimeStampResp`` with it, and the test suite's stand-in authority signs its tokens with it.
The signatures themselves are checked with ``cryptography``.

The request: SHA-256 of a checkpoint's canonical bytes, a random nonce, ``certReq`` true, sent
as ``application/timestamp-query`` by HTTP POST. What a token's check covers is
``token_problem``'s docstring.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import urllib.error
import urllib.request
from typing import Any

import anyio.to_thread
from asn1crypto import cms, core, tsp
from cryptography import x509

from interventions.register.verifier.verify_register import (
    DIGESTS_BY_OID,
    verify_with_certificate,
)

_DIGEST_OIDS = {"sha1": "1.3.14.3.2.26", "sha256": "2.16.840.1.101.3.4.2.1"}
_DIGEST_OIDS |= {"sha384": "2.16.840.1.101.3.4.2.2", "sha512": "2.16.840.1.101.3.4.2.3"}
MAX_RESPONSE_BYTES = 1024 * 1024


class _TimeStampResp(core.Sequence):  # type: ignore[misc]
    """RFC 3161's TimeStampResp. asn1crypto's own (``tsp.TimeStampResp``) requires the token,
    which a refusal leaves out: it could not read why the authority refused."""

    _fields = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


class TimestampError(Exception):
    """The authority could not be reached, refused, or answered something unusable."""


def request_for(signed: bytes, nonce: int) -> bytes:
    """The DER ``TimeStampReq`` over SHA-256 of ``signed``."""
    request: bytes = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha256"},
                "hashed_message": hashlib.sha256(signed).digest(),
            },
            "nonce": nonce,
            "cert_req": True,
        }
    ).dump()
    return request


def token_from_response(body: bytes, signed: bytes, nonce: int) -> str:
    """The token (DER, base64) of a ``TimeStampResp`` answering ``request_for(signed, nonce)``."""
    try:
        response: Any = _TimeStampResp.load(body)
        status = response["status"]["status"].native
        if status not in ("granted", "granted_with_mods"):
            texts = response["status"]["status_string"].native or []
            raise TimestampError(f"the authority refused: {status} {' '.join(texts)}".strip())
        token = response["time_stamp_token"]
        if token.native is None:
            raise TimestampError("the authority granted no token")
        encoded = base64.b64encode(token.dump()).decode("ascii")
        info = tsp.TSTInfo.load(token["content"]["encap_content_info"]["content"].contents)
        answered_nonce = info["nonce"].native
    except (ValueError, TypeError, KeyError) as exc:
        raise TimestampError(f"the authority's answer is not an RFC 3161 response ({exc})") from exc
    if answered_nonce != nonce:
        raise TimestampError("the authority's token answers another request (nonce)")
    problem = token_problem(encoded, signed)
    if problem is not None:
        raise TimestampError(f"the authority's token {problem}")
    return encoded


def token_problem(token_b64: str, signed: bytes) -> str | None:
    """Why an RFC 3161 token does not cover ``signed``, or ``None`` when it does.

    Checked: the token is a CMS SignedData over a TSTInfo whose message imprint is SHA-256 of
    ``signed``; the signer's ``messageDigest`` attribute is the digest of that TSTInfo; the
    signature over the signed attributes verifies under a certificate the token carries.
    Not checked: that this certificate chains to an authority you trust, its validity period
    and revocation (no trust store is configured; ``openssl ts -verify -CAfile`` does it).
    The offline verifier (``verify_register.timestamp_problem``) checks the same, with its
    own DER reader, in the same words.
    """
    try:
        data = base64.b64decode(token_b64, validate=True)
        content_info: Any = cms.ContentInfo.load(data)
        signed_data = content_info["content"]
        tst_der = signed_data["encap_content_info"]["content"].contents
        info: Any = tsp.TSTInfo.load(tst_der)
        imprint = info["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        hashed = imprint["hashed_message"].native
        signer = signed_data["signer_infos"][0]
        digest_name = signer["digest_algorithm"]["algorithm"].native
        attributes = signer["signed_attrs"]
        digests = [
            a["values"][0].native for a in attributes if a["type"].native == "message_digest"
        ]
        signature = signer["signature"].native
        certificates = [
            x509.load_der_x509_certificate(c.chosen.dump())
            for c in (signed_data["certificates"] or [])
        ]
        signed_attributes = b"\x31" + attributes.dump()[1:]
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        return f"is not a readable RFC 3161 token ({exc})"
    if algorithm != "sha256":
        return "does not use SHA-256"
    if hashed != hashlib.sha256(signed).digest():
        return "does not cover it (message imprint mismatch)"
    make = DIGESTS_BY_OID.get(_DIGEST_OIDS.get(str(digest_name), ""))
    if make is None:
        return f"uses an unknown digest ({digest_name})"
    if digests != [hashlib.new(str(digest_name), tst_der).digest()]:
        return "signature does not cover its content (message digest mismatch)"
    if not any(
        verify_with_certificate(c, signature, signed_attributes, make()) for c in certificates
    ):
        return "signature is invalid"
    return None


def _post(url: str, body: bytes, timeout: float) -> bytes:
    if not url.startswith(("http://", "https://")):
        raise TimestampError(f"{url!r} is not an http:// or https:// URL")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/timestamp-query",
            "Accept": "application/timestamp-reply",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return bytes(answer.read(MAX_RESPONSE_BYTES + 1))
    except urllib.error.HTTPError as exc:
        raise TimestampError(f"the authority answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TimestampError(f"the authority cannot be reached ({reason})") from exc


async def fetch_token(url: str, signed: bytes, *, seconds: float) -> str:
    """A token over ``signed`` from the authority at ``url`` (base64 DER); ``TimestampError``
    when it cannot be had."""
    nonce = secrets.randbits(63)
    # The socket's own timeout bounds the wait (a thread cannot be cancelled midway).
    body = await anyio.to_thread.run_sync(_post, url, request_for(signed, nonce), seconds)
    if len(body) > MAX_RESPONSE_BYTES:
        raise TimestampError("the authority's answer is too large")
    return token_from_response(body, signed, nonce)
