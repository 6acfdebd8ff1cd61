"""The answers of requests that carried an ``Idempotency-Key``, kept to be replayed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from interventions.db import Base, UTCDateTime


class IdempotencyKey(Base):
    """One key of one caller (organisation and user) and the answer its first request got.

    Written in the transaction of the change it answers, so that a key exists exactly when
    its change does. ``fingerprint`` is the SHA-256 of the method, the path with its query
    and the SHA-256 of the body: the same key with another request is refused.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_expires_at", "expires_at"),)

    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    # [[name, value], …]: the answer's headers that describe its body (content type, ETag,
    # Location), as sent.
    headers: Mapped[list[Any]] = mapped_column(JSON)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
