"""The journal's tables: its entries, and each organisation's head (its last entry); the
checkpoints that sign heads, and the keys that signed them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from interventions.db import ID, Base, UTCDateTime


class JournalEntry(Base):
    """One change, chained to the one before it in its organisation (``register.journal``).

    Append-only: triggers refuse UPDATE and DELETE (migration 20261207_0004).
    """

    __tablename__ = "journal_entries"
    __table_args__ = (
        Index("ix_journal_entries_subject", "organization_id", "subject_type", "subject_id", "seq"),
    )

    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=False)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    actor: Mapped[dict[str, Any]] = mapped_column(JSON)
    action: Mapped[str] = mapped_column(String(40))
    subject_type: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[str] = mapped_column(String(64))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class JournalHead(Base):
    """The last entry of an organisation's journal: where the next one chains from.

    ``seq`` moves first (the append's upsert, which also locks the row until the transaction
    ends); ``hash`` follows the entry inserted at that seq (a trigger).
    """

    __tablename__ = "journal_heads"

    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(ID)
    hash: Mapped[str] = mapped_column(String(64))


# --- Checkpoints and their signing keys (issue 11, items 2-3) ------------------------------


class RegisterKey(Base):
    """A public key the service signed checkpoints with. Kept after rotation (``retired_at``)
    so that every checkpoint stays verifiable; every process publishes the same set."""

    __tablename__ = "register_keys"

    # First 16 hex characters of the SHA-256 of the raw public key.
    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(16), default="Ed25519")
    # The raw 32-byte Ed25519 public key, base64 (standard alphabet, padded).
    public_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class JournalCheckpoint(Base):
    """A journal head signed by the service: (organisation, seq, hash) at ``signed_at``."""

    __tablename__ = "journal_checkpoints"
    # One checkpoint per head: several workers never sign the same head twice.
    __table_args__ = (UniqueConstraint("organization_id", "seq"),)

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    key_id: Mapped[str] = mapped_column(ForeignKey("register_keys.key_id"))
    # Ed25519 over the RFC 8785 form of {organizationId, seq, hash, signedAt, keyId}, base64.
    signature: Mapped[str] = mapped_column(String(100))
    # RFC 3161: the time-stamp token (DER, base64) over SHA-256 of the same bytes, and the
    # authority asked; ``timestamp_error`` keeps why the last request failed (retried).
    timestamp_token: Mapped[str | None] = mapped_column(Text())
    tsa_url: Mapped[str | None] = mapped_column(String(500))
    timestamp_error: Mapped[str | None] = mapped_column(Text())
