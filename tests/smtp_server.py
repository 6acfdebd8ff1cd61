"""A real SMTP server for the tests (aiosmtpd), keeping what it receives."""

from __future__ import annotations

import asyncio
import email
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Mailbox:
    """aiosmtpd handler: keeps what it accepts; refuses or holds chosen recipients."""

    received: list[Received] = field(default_factory=list)
    refuse_rcpt: dict[str, str] = field(default_factory=dict)
    refuse_data: dict[str, str] = field(default_factory=dict)
    # DATA for this recipient is recorded, then left unanswered until ``release`` is set:
    # the server has the message but the relay has no acknowledgement yet.
    hold_recipient: str | None = None
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        recipient = envelope.rcpt_tos[0]
        if recipient in self.refuse_data:
            return self.refuse_data[recipient]
        message = email.message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        if recipient == self.hold_recipient:
            self.holding.set()
            await asyncio.to_thread(self.release.wait, 30)
        return "250 Message accepted for delivery"

    def counts(self, message_ids: list[str]) -> Counter[str]:
        """How many times each of these Message-IDs arrived (others' mail ignored)."""
        wanted = set(message_ids)
        with self.lock:
            return Counter(
                str(r.message["Message-ID"])
                for r in self.received
                if str(r.message["Message-ID"]) in wanted
            )

    def by_id(self, message_id: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.message["Message-ID"] == message_id]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class SmtpServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.mailbox = Mailbox()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        self.mailbox.release.set()
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
