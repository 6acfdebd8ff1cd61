"""One transaction per request, ended before the response starts.

``RequestTransactions`` puts the request's ``RequestDatabase`` in its scope (opened only
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
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interventions.db import Database, Executor
from interventions.drivers import Lease
from interventions.errors import AppError, database_error_response, render, unexpected_response

logger = logging.getLogger(__name__)


class RecordedRefusal(Exception):
    """Refuse the request but keep what it wrote (failed attempts a rate limit counts).

    Any other error rolls the request's transaction back.
    """

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class RequestDatabase:
    """The request's database, opened when first asked for: one transaction on a pooled
    driver connection, ended by ``RequestTransactions`` (below) before the response
    starts (committed for a success or a ``RecordedRefusal``, rolled back otherwise).

    A write, and any request on SQLite, is one transaction (``BEGIN IMMEDIATE`` on SQLite for
    writes). A read on PostgreSQL runs in autocommit, where READ COMMITTED gives every
    statement its own snapshot in a transaction or not: BEGIN and COMMIT would only add two
    round trips.
    """

    def __init__(self, db: Database, read: bool) -> None:
        self._db = db
        self._read = read
        self._executor: Executor | None = None
        self._lease: Lease | None = None
        self.keep = False  # commit even though the request is refused (``RecordedRefusal``)

    async def executor(self) -> Executor:
        if self._executor is None:
            self._executor, self._lease = await self._db.executor(write=not self._read)
        return self._executor

    @property
    def opened(self) -> bool:
        return self._lease is not None

    async def finish(self, *, commit: bool) -> None:
        """Commit (or roll back) and give the connection back."""
        lease, self._lease = self._lease, None
        executor = self._executor
        if lease is None or executor is None:
            return
        try:
            await executor.end(commit=commit)
        finally:
            await lease.give_back(discard=executor.lost)


SCOPE_KEY = "interventions.request_database"


async def request_database(request: Request) -> RequestDatabase:
    """The request's database (see ``RequestDatabase``), made by the middleware that ends
    its transaction (``RequestTransactions``). A plain dependency (a yield one
    costs twice as much on every request), and async: FastAPI runs a sync one in a thread."""
    found = request.scope.get(SCOPE_KEY)
    if found is None:
        raise RuntimeError("RequestTransactions is not installed on this application")
    ctx: RequestDatabase = found
    return ctx


RequestDb = Annotated[RequestDatabase, Depends(request_database)]


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
