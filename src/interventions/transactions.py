"""One transaction per request, ended before the response starts.

``RequestTransactions`` puts the request's ``db.RequestDatabase`` in its scope (opened only
when an endpoint or the caller's authentication asks for the executor) and ends it when the
response is about to start: committed for an answer below 400 or a ``RecordedRefusal``,
rolled back for any other error. A client is never told "done" about something that was not
committed: a commit that fails turns the answer into that failure's (503 when the database
is out of reach), and nothing of the original answer is sent.

A middleware rather than a yield dependency: FastAPI pays a yield dependency's exit on every
request (~50 µs of CPU more than a plain one; ../shared/DRIVER-EXECUTION.md).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interventions.db import READ_METHODS, SCOPE_KEY, RecordedRefusal, RequestDatabase
from interventions.errors import AppError, database_error_response, render, unexpected_response

logger = logging.getLogger(__name__)


class RequestTransactions:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = RequestDatabase(scope["app"].state.db, read=scope["method"] in READ_METHODS)
        scope[SCOPE_KEY] = ctx
        ended = False
        replaced = False

        async def end_then_send(message: Message) -> None:
            nonlocal ended, replaced
            if replaced:
                return  # the original answer gave way to the commit's failure
            if message["type"] == "http.response.start" and not ended:
                ended = True
                if ctx.opened:
                    try:
                        await ctx.finish(commit=message["status"] < 400 or ctx.keep)
                    except Exception as error:
                        replaced = True
                        response = database_error_response(
                            error, scope["method"], scope.get("path", "")
                        )
                        await response(scope, receive, send)
                        return
            await send(message)

        try:
            await self.app(scope, receive, end_then_send)
        finally:
            if not ended and ctx.opened:
                # No answer started (an error on its way out, a client gone): nothing kept.
                try:
                    await ctx.finish(commit=False)
                except Exception:
                    logger.warning("rolling back a request's transaction failed", exc_info=True)


def install_transactions(app: FastAPI) -> None:
    """The middleware, and the answer to a ``RecordedRefusal``: its error's, committed."""
    app.add_middleware(RequestTransactions)

    async def _recorded(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RecordedRefusal)
        ctx: Any = request.scope.get(SCOPE_KEY)
        if ctx is not None:
            ctx.keep = True
        if isinstance(exc.error, AppError):
            return render(exc.error, request.url.path)
        return unexpected_response(exc.error, request.method, request.url.path)

    app.add_exception_handler(RecordedRefusal, _recorded)
