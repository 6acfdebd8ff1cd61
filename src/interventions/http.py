"""Transport rules applied before routing: body size (413) and JSON content type (415)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interventions.errors import AppError, BadRequest, PayloadTooLarge, UnsupportedMediaType, render

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json"


def declared_length(content_length: str | None) -> int | None:
    """The request's ``Content-Length`` as a number, ``None`` when absent or malformed (then
    bodies are counted as they come)."""
    if content_length is None:
        return None
    try:
        return int(content_length)
    except ValueError:
        return None


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than {limit} bytes.")


class BodyGuard:
    """Buffers request bodies up to a limit and refuses what is not JSON.

    ``raw_body_limit`` names path prefixes that take raw bytes (signature uploads) with their
    own limit; everything else must declare ``application/json`` when it carries a body.
    Raw bodies are not buffered: a declared length over their limit is a 413 at once, and
    otherwise the body streams through to the route, which checks the request (an upload
    URL's signature) before reading any of it and counts what it reads against the limit.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        raw_body_limit: Callable[[str], int | None],
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.raw_body_limit = raw_body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        declared = declared_length(headers.get("content-length"))
        raw_limit = self.raw_body_limit(path)
        if raw_limit is not None:
            if declared is not None and declared > raw_limit:
                await self._reject(scope, send, too_large(raw_limit))
                return
            await self.app(scope, receive, send)
            return

        limit = self.max_body_bytes
        if declared is not None and declared > limit:
            await self._reject(scope, send, too_large(limit))
            return

        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._reject(scope, send, too_large(limit))
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)

        if body and not _is_json(headers.get("content-type", "")):
            await self._reject(
                scope,
                send,
                UnsupportedMediaType(
                    "The request body must be sent as Content-Type: application/json."
                ),
            )
            return

        if body:
            try:
                body.decode("utf-8")
            except UnicodeDecodeError:
                await self._reject(
                    scope,
                    send,
                    BadRequest(
                        "The request body is not valid UTF-8.",
                        errors=[{"field": "body", "message": "Malformed JSON: not UTF-8 text."}],
                    ),
                )
                return

        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _reject(scope: Scope, send: Send, error: AppError) -> None:
        response = render(error, scope["path"])

        async def _empty() -> Message:
            return {"type": "http.disconnect"}

        await response(scope, _empty, send)
