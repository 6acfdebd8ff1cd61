"""A real HTTP receiver for the webhook tests: ``http.server`` on 127.0.0.1 in a thread. It
checks each request's Standard Webhooks signature with ``standardwebhooks.Webhook.verify``,
keeps what it got, and answers what the test queued (204 by default)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.smtp_server import free_port


@dataclass
class Received:
    webhook_id: str
    timestamp: str
    signature: str
    body: bytes
    host: str
    verified: bool
    error: str | None = None

    @property
    def event(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.body)
        return document


@dataclass
class Answer:
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class Receiver:
    """Start with ``start()``; stop (the port closes) with ``stop()``; start again on the same
    port to come back."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.secret: str | None = None
        self.received: list[Received] = []
        self.answers: list[Answer] = []  # consumed one per request, then ``default``
        self.default = Answer()
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                verified, error = False, None
                if receiver.secret is not None:
                    try:
                        Webhook(receiver.secret).verify(body, headers)
                        verified = True
                    except WebhookVerificationError as exc:
                        error = str(exc)
                with receiver.lock:
                    receiver.received.append(
                        Received(
                            webhook_id=headers.get("webhook-id", ""),
                            timestamp=headers.get("webhook-timestamp", ""),
                            signature=headers.get("webhook-signature", ""),
                            body=body,
                            host=headers.get("host", ""),
                            verified=verified,
                            error=error,
                        )
                    )
                    answer = receiver.answers.pop(0) if receiver.answers else receiver.default
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self) -> list[str]:
        with self.lock:
            return [r.webhook_id for r in self.received]

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r.event for r in self.received]
