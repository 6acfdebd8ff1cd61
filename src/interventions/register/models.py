"""The journal's tables: its entries, and each organisation's head (its last entry)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
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
