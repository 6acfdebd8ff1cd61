"""RFC 3161 time-stamps of checkpoints (issue 11, item 2), against a stand-in authority.

A time-stamping authority is a third-party service, the one place the issue allows a
stand-in: ``StandInAuthority`` is a real HTTP server on a free local port that answers
``application/timestamp-query`` with real tokens (CMS SignedData over a TSTInfo, built with
asn1crypto) signed by a throwaway RSA key and self-signed certificate.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asn1crypto import cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from interventions.config import Settings
from interventions.db import Database
from interventions.register import checkpoints, timestamps
from interventions.register.verifier import verify_register
from tests.factories import Factory
from tests.helpers import REGISTER, ok, record_entries, register_command, tamper
from tests.smtp_server import free_port

CHECKPOINTS = f"{REGISTER}/rs/checkpoints"


class StandInAuthority:
    """A stand-in RFC 3161 authority. ``mode``: ``grant``, ``down`` (HTTP 503), ``reject``
    (status rejection), ``other-nonce``."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Stand-in TSA")])
        now = dt.datetime.now(dt.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), True)
            .sign(self.key, hashes.SHA256())
        )
        self.mode = "grant"
        self.requests = 0
        self.serial = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/tsa"
        authority = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                authority.requests += 1
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if authority.mode == "down":
                    self.send_response(503)
                    self.end_headers()
                    return
                assert self.headers["Content-Type"] == "application/timestamp-query"
                answer = authority.answer(tsp.TimeStampReq.load(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, request: Any) -> bytes:
        if self.mode == "reject":
            # asn1crypto's TimeStampResp requires the token RFC 3161 leaves out on a refusal:
            # the SEQUENCE is written by hand.
            status = tsp.PKIStatusInfo({"status": "rejection", "status_string": ["busy"]})
            body = status.dump()
            return bytes([0x30, len(body)]) + body
        nonce = request["nonce"].native + (1 if self.mode == "other-nonce" else 0)
        token = self.token(request["message_imprint"]["hashed_message"].native, nonce)
        granted = {"status": {"status": "granted"}, "time_stamp_token": token}
        return bytes(tsp.TimeStampResp(granted).dump())

    def token(self, digest: bytes, nonce: int | None = None) -> Any:
        """A token over ``digest`` (SHA-256), as the authority signs them."""
        self.serial += 1
        info = tsp.TSTInfo(
            {
                "version": "v1",
                "policy": "1.3.6.1.4.1.99999.1",
                "message_imprint": {
                    "hash_algorithm": {"algorithm": "sha256"},
                    "hashed_message": digest,
                },
                "serial_number": self.serial,
                "gen_time": dt.datetime.now(dt.UTC).replace(microsecond=0),
                "nonce": nonce,
            }
        )
        info_der = info.dump()
        attributes = cms.CMSAttributes(
            [
                cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
                cms.CMSAttribute(
                    {"type": "message_digest", "values": [hashlib.sha256(info_der).digest()]}
                ),
            ]
        )
        signature = self.key.sign(attributes.dump(), padding.PKCS1v15(), hashes.SHA256())
        certificate = asn1_x509.Certificate.load(
            self.certificate.public_bytes(serialization.Encoding.DER)
        )
        signer = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier(
                    {
                        "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                            {
                                "issuer": certificate.issuer,
                                "serial_number": certificate.serial_number,
                            }
                        )
                    }
                ),
                "digest_algorithm": {"algorithm": "sha256"},
                "signed_attrs": attributes,
                "signature_algorithm": {"algorithm": "sha256_rsa"},
                "signature": signature,
            }
        )
        signed_data = cms.SignedData(
            {
                "version": "v3",
                "digest_algorithms": [{"algorithm": "sha256"}],
                "encap_content_info": {
                    "content_type": "tst_info",
                    "content": core.ParsableOctetString(info_der),
                },
                "certificates": [certificate],
                "signer_infos": [signer],
            }
        )
        return cms.ContentInfo({"content_type": "signed_data", "content": signed_data})

    def token_b64(self, signed: bytes) -> str:
        return base64.b64encode(self.token(hashlib.sha256(signed).digest()).dump()).decode()


@pytest.fixture
def authority() -> Iterator[StandInAuthority]:
    server = StandInAuthority()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def settings(settings: Settings, authority: StandInAuthority) -> Settings:
    return settings.model_copy(update={"tsa_url": authority.url, "tsa_timeout_seconds": 5})


async def _checkpoints(database: Database, organization_id: int) -> list[Any]:
    async with database.transaction(write=False) as db:
        return await checkpoints.repo.checkpoints(db, organization_id)


async def test_a_checkpoint_is_time_stamped_after_its_answer(
    client: httpx.AsyncClient,
    factory: Factory,
    database: Database,
    authority: StandInAuthority,
) -> None:
    org = await factory.org()
    await record_entries(database, org.id, 2)
    made = ok(await client.post(CHECKPOINTS, headers=org.admin.headers), 201)
    assert made["tsaUrl"] == authority.url
    # The token was asked for once the checkpoint was stored (a background task).
    listed = (await client.get(CHECKPOINTS, headers=org.admin.headers)).json()["data"]
    token = listed[0]["timestampToken"]
    assert token is not None
    assert listed[0]["timestampError"] is None
    row = (await _checkpoints(database, org.id))[0]
    signed = checkpoints.signed_bytes(row)
    # Both readers accept it: the service's (asn1crypto) and the offline verifier's.
    assert timestamps.token_problem(token, signed) is None
    assert verify_register.timestamp_problem(token, signed) is None
    verification = ok(await client.get(f"{REGISTER}/rs/verification", headers=org.admin.headers))
    assert verification["valid"], verification


async def test_an_authority_out_of_reach_loses_no_checkpoint(
    factory: Factory, settings: Settings, database: Database, authority: StandInAuthority
) -> None:
    org = await factory.org()
    await record_entries(database, org.id, 3)
    authority.mode = "down"
    result = await register_command(settings, "checkpoint", "--organization", str(org.id))
    assert result.exit_code == 0, result.output
    assert "not time-stamped yet (the authority answered HTTP 503)" in result.output
    (row,) = await _checkpoints(database, org.id)
    assert row.timestamp_token is None
    assert row.timestamp_error == "the authority answered HTTP 503"

    # A refusal and a token for another request are noted the same way.
    authority.mode = "reject"
    await checkpoints.stamp_pending(database, settings)
    (row,) = await _checkpoints(database, org.id)
    assert row.timestamp_error == "the authority refused: rejection busy"
    authority.mode = "other-nonce"
    await checkpoints.stamp_pending(database, settings)
    (row,) = await _checkpoints(database, org.id)
    assert row.timestamp_error == "the authority's token answers another request (nonce)"

    # Back: the worker's next round stamps it.
    authority.mode = "grant"
    await checkpoints.checkpoint_round(database, settings)
    (row,) = await _checkpoints(database, org.id)
    assert row.timestamp_token is not None
    assert row.timestamp_error is None
    assert timestamps.token_problem(row.timestamp_token, checkpoints.signed_bytes(row)) is None


async def test_a_token_that_does_not_cover_its_checkpoint_fails_verification(
    client: httpx.AsyncClient,
    factory: Factory,
    settings: Settings,
    database: Database,
    authority: StandInAuthority,
    tmp_path: Path,
) -> None:
    org = await factory.org()
    await record_entries(database, org.id, 2)
    await checkpoints.checkpoint_round(database, settings)
    (row,) = await _checkpoints(database, org.id)
    signed = checkpoints.signed_bytes(row)

    # A genuine token of the authority, but over other bytes.
    other = authority.token_b64(signed + b" ")
    expected = f"checkpoint {row.id} timestamp does not cover it (message imprint mismatch)"
    assert verify_register.timestamp_problem(other, signed) == expected.split("timestamp ")[1]
    await tamper(
        settings.database_url,
        f"UPDATE journal_checkpoints SET timestamp_token = '{other}' WHERE id = '{row.id}'",
    )
    found = ok(await client.get(f"{REGISTER}/rs/verification", headers=org.admin.headers))
    assert found["firstProblem"]["message"] == expected
    assert found["firstProblem"]["checkpointId"] == row.id

    # The right imprint, but a signature that is not the authority's.
    token = bytearray(base64.b64decode(authority.token_b64(signed)))
    token[-1] ^= 0x01  # the signature is the token's last bytes
    forged = base64.b64encode(bytes(token)).decode()
    assert timestamps.token_problem(forged, signed) == "signature is invalid"
    assert verify_register.timestamp_problem(forged, signed) == "signature is invalid"
    await tamper(
        settings.database_url,
        f"UPDATE journal_checkpoints SET timestamp_token = '{forged}' WHERE id = '{row.id}'",
    )
    result = await register_command(settings, "verify", "--organization", str(org.id))
    assert result.exit_code == 1
    assert f"checkpoint {row.id} timestamp signature is invalid" in result.output

    assert timestamps.token_problem("bm90IGEgdG9rZW4=", signed).startswith("is not a readable")
    assert verify_register.timestamp_problem("bm90IGEgdG9rZW4=", signed).startswith(
        "is not a readable"
    )
