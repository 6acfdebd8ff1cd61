"""What the register's endpoints answer (camelCase on the wire)."""

from __future__ import annotations

from pydantic import Field

from interventions.wire import DateTimeOut, ReadModel


class KeyRead(ReadModel):
    key_id: str = Field(description="First 16 hex characters of SHA-256 of the raw public key.")
    algorithm: str = Field(description="Always `Ed25519`.")
    public_key: str = Field(description="The raw 32-byte public key, base64.")
    created_at: DateTimeOut | None = Field(description="When it first signed (null: not yet).")
    retired_at: DateTimeOut | None = Field(description="When a newer key replaced it.")
    current: bool = Field(description="Whether it signs the checkpoints made now.")


class PublicCheckpointRead(ReadModel):
    """What anyone may read of a checkpoint: exactly what its signature covers, and it."""

    id: str
    organization_id: int
    seq: int = Field(description="The journal entry it signs (the head when it was made).")
    hash: str = Field(description="That entry's hash (lower-case hex SHA-256).")
    signed_at: DateTimeOut
    key_id: str
    signature: str = Field(
        description="Ed25519, base64, over the RFC 8785 canonical JSON of "
        '`{"organizationId", "seq", "hash", "signedAt", "keyId"}`.'
    )


class CheckpointRead(PublicCheckpointRead):
    timestamp_token: str | None = Field(
        description="RFC 3161 time-stamp token (DER, base64) over SHA-256 of the signed "
        "bytes; null when no authority is configured or it has not answered yet."
    )
    tsa_url: str | None = Field(description="The time-stamping authority asked, if any.")
    timestamp_error: str | None = Field(
        description="Why the authority's last answer gave no token (retried by the worker)."
    )


class HeadRead(ReadModel):
    seq: int
    hash: str


class ProblemRead(ReadModel):
    kind: str = Field(
        description="`missing`, `altered`, `reordered`, `unlinked`, `foreign`, `malformed`, "
        "`head`, or `checkpoint-…` (`signature`, `unknown-key`, `hash`, `timestamp`, "
        "`beyond`, `organization`, `malformed`)."
    )
    message: str = Field(examples=["entry 17 was altered (hash mismatch)"])
    seq: int | None = Field(description="The entry where it was found.")
    checkpoint_id: str | None


class VerificationRead(ReadModel):
    valid: bool
    entries: int = Field(description="Entries checked (up to the first problem).")
    head: HeadRead | None
    checkpoints: int
    first_problem: ProblemRead | None
