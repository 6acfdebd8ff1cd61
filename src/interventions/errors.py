"""Errors carry their status; one set of handlers renders them as RFC 9457 problem+json."""

from __future__ import annotations

import logging
import socket
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://interventions.dev/problems/"


class AppError(Exception):
    """Base of every error a service raises on purpose."""

    status = 500
    slug = "internal-error"
    title = "Internal server error"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors) if errors else None
        self.headers = headers


class BadRequest(AppError):
    status = 400
    slug = "validation-error"
    title = "Invalid request"


class Unauthorized(AppError):
    status = 401
    slug = "unauthorized"
    title = "Authentication required"


class Forbidden(AppError):
    status = 403
    slug = "forbidden"
    title = "Forbidden"


class NotFound(AppError):
    status = 404
    slug = "not-found"
    title = "Not found"


class MethodNotAllowed(AppError):
    status = 405
    slug = "method-not-allowed"
    title = "Method not allowed"


class Conflict(AppError):
    status = 409
    slug = "conflict"
    title = "Conflict with the current state"


class PreconditionFailed(AppError):
    status = 412
    slug = "precondition-failed"
    title = "Precondition failed"


class PayloadTooLarge(AppError):
    status = 413
    slug = "payload-too-large"
    title = "Request body too large"


class UnsupportedMediaType(AppError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class Unprocessable(AppError):
    status = 422
    slug = "unprocessable"
    title = "Request cannot be processed"


class TooManyRequests(AppError):
    status = 429
    slug = "too-many-requests"
    title = "Too many requests"


class ServiceUnavailable(AppError):
    status = 503
    slug = "unavailable"
    title = "Service unavailable"


# Domain refusals: each is one of the classes above (its status, slug and title, so clients
# see the same problem+json), named for what went wrong, with its message and field.


def _field(field: str, message: str) -> list[dict[str, str]]:
    return [{"field": field, "message": message}]


class LifecycleConflict(Conflict):
    """The intervention's status (or kind) does not allow the action: the lifecycle's refusals.
    The message names the state (``An intervention that is cancelled cannot be updated.``)."""


class NotCheckedIn(LifecycleConflict):
    """Executing before the provider checked in."""


class NotExecuted(LifecycleConflict):
    """Verifying what has not been executed yet."""


class AlreadyCheckedIn(LifecycleConflict):
    """The provider is on site: no second check-in, no re-planning, no validation."""


class AlreadyExecuted(LifecycleConflict):
    """Executed, awaiting its verification: no re-planning, no cancellation."""


class AlreadyVerified(LifecycleConflict):
    """Accepted, rejected or validated already."""


class AlreadyCancelled(LifecycleConflict):
    """Cancelled: it stays in the register and takes no more writes."""


class NotForThisKind(LifecycleConflict):
    """The action does not apply to this kind of intervention (validating a curative)."""


class VerifiedMeanwhile(Conflict):
    """Another verification of the same intervention committed first."""

    def __init__(self) -> None:
        super().__init__("The intervention was verified by someone else meanwhile.")


class ChangedMeanwhile(Conflict):
    """The intervention changed status between being read and being written (only where no
    row lock holds it: two writers cannot both pass)."""

    def __init__(self) -> None:
        super().__init__("The intervention changed meanwhile; read it again.")


class AnomalyTaken(Conflict):
    """Another curative intervention took one of the anomalies since they were read."""

    def __init__(self) -> None:
        super().__init__("Another intervention took one of these anomalies; try again.")


class NotNullable(BadRequest):
    def __init__(self, field: str) -> None:
        super().__init__(f"{field} cannot be null.", errors=_field(field, "Cannot be null."))


class SignatureMissing(BadRequest):
    def __init__(self) -> None:
        super().__init__(
            "The execution needs a signature.", errors=_field("signature", "Required.")
        )


class SignatureTooLarge(BadRequest):
    def __init__(self, field: str, max_bytes: int) -> None:
        super().__init__(
            "The signature is too large.", errors=_field(field, f"At most {max_bytes} bytes.")
        )


class EndsBeforeStart(Unprocessable):
    def __init__(self) -> None:
        super().__init__(
            "scheduledEnd is before scheduledStart.",
            errors=_field("scheduledEnd", "Must not be before scheduledStart."),
        )


class StartsInTheFuture(Unprocessable):
    def __init__(self) -> None:
        super().__init__(
            "actualStart is in the future.",
            errors=_field("actualStart", "Must not be in the future."),
        )


class AnomaliesNotOpen(Unprocessable):
    def __init__(self, anomaly_ids: Sequence[int]) -> None:
        ids = ", ".join(map(str, anomaly_ids))
        super().__init__(
            f"Anomalies {ids} are already resolved or being repaired.",
            errors=_field("anomalyIds", f"Not open: {ids}."),
        )


class NotSiteRules(Unprocessable):
    """(site, rule) pairs that are no site rule of the organisation."""

    def __init__(self, pairs: Sequence[tuple[int, int]]) -> None:
        text = ", ".join(f"(site {s}, rule {r})" for s, r in pairs)
        super().__init__(
            f"These sites do not carry these rules: {text}.",
            errors=_field("ruleIds", f"Not a site rule: {text}."),
        )


class NotATrainingRule(Unprocessable):
    def __init__(self, rule_id: int) -> None:
        super().__init__(
            f"Rule {rule_id} is not a training rule.",
            errors=_field("ruleId", "Must be a training rule (type 2)."),
        )


class RoutineWithoutSiteRules(Unprocessable):
    def __init__(self, routine_id: int) -> None:
        super().__init__(
            f"Routine {routine_id} has no site rules to plan.",
            errors=_field("routineId", "The routine has no site rules."),
        )


class WrongPin(Unprocessable):
    def __init__(self) -> None:
        super().__init__(
            "The PIN code does not match this intervention.",
            errors=_field("codePin", "Wrong PIN code."),
        )


class AttendeesForDrillsOnly(Unprocessable):
    def __init__(self) -> None:
        super().__init__(
            "attendeeCount is only for training exercises.",
            errors=_field("attendeeCount", "Only for training exercises."),
        )


# How long a client should wait before sending the same request again after a 503 for the
# database: long enough for a pool slot or a PostgreSQL connection to free up.
RETRY_AFTER_SECONDS = 1

# PostgreSQL SQLSTATEs that say the server cannot take the request now, not that the request
# is wrong: connection exceptions (08…), insufficient resources (53…: too many connections,
# out of memory, disk full), shutdown or start-up in progress (57P01–57P03), and a statement
# cancelled (57014): past the command timeout (``statement_timeout``: a lock held elsewhere,
# a server too slow), or by an operator.
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "53", "57P01", "57P02", "57P03", "57014")
# Refusals at connection time only: the database is closed to connections (55000, e.g.
# ALLOW_CONNECTIONS false) or does not exist (yet, or while it is restored: 3D000). A
# statement can raise 55000 too (currval before nextval), and that is a bug, not an outage.
_UNAVAILABLE_AT_CONNECT_SQLSTATES = ("55000", "3D000")
# SQLite's equivalents: another writer kept the lock past busy_timeout; the file is unreachable.
_UNAVAILABLE_SQLITE_MESSAGES = ("database is locked", "unable to open database file")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        pending += [
            orig if isinstance(orig, BaseException) else None,
            current.__cause__,
            current.__context__,
        ]


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database could not be reached or had no room for the request
    (a full pool, too many connections, a lost connection, a lock held too long), so that the
    same request may succeed later, as opposed to a statement that failed."""
    for error in _chain(exc):
        if isinstance(error, PoolTimeout):
            return True
        if isinstance(error, DBAPIError) and error.connection_invalidated:
            return True
        # SQLAlchemy wraps what the driver raised while connecting with no statement.
        if (
            isinstance(error, DBAPIError)
            and error.statement is None
            and getattr(error.orig, "sqlstate", None) in _UNAVAILABLE_AT_CONNECT_SQLSTATES
        ):
            return True
        sqlstate = getattr(error, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES):
            return True
        if isinstance(error, sqlite3.OperationalError) and str(error).startswith(
            _UNAVAILABLE_SQLITE_MESSAGES
        ):
            return True
        # TimeoutError is also asyncio's: asyncpg's connect timeout, the executor's watchdog.
        if isinstance(error, ConnectionError | TimeoutError | socket.gaierror):
            return True
    return False


def unavailable_summary(exc: BaseException) -> str:
    """One line for the log about why the database was unavailable: the first line of the
    error (SQLAlchemy appends the statement and a link on the next ones), or its class when
    it says nothing (a timeout)."""
    first = str(exc).strip().partition("\n")[0]
    return first or type(exc).__name__


_BY_STATUS: dict[int, type[AppError]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PreconditionFailed,
        PayloadTooLarge,
        UnsupportedMediaType,
        Unprocessable,
        TooManyRequests,
        ServiceUnavailable,
    )
}


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str,
    errors: Sequence[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = list(errors)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def render(error: AppError, instance: str | None = None) -> JSONResponse:
    return problem_response(
        error.status,
        error.title,
        error.detail,
        slug=error.slug,
        errors=error.errors,
        headers=error.headers,
        instance=instance,
    )


def method_not_allowed(method: str, path: str, allow: str) -> JSONResponse:
    """405 for a path that exists for other methods; ``allow`` lists every method it takes."""
    error = MethodNotAllowed(f"Method {method} is not allowed on {path}.", headers={"Allow": allow})
    return render(error, path)


def _field_path(loc: Sequence[int | str]) -> str:
    """``("body", "provider", "email")`` → ``provider.email``; list indexes as ``[0]``."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        source = parts.pop(0)
        if not parts:
            return str(source)
        if source != "body":
            return str(parts[0])
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


def _message(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "Unknown field."
    if kind == "missing":
        return "Field required."
    if kind == "json_invalid":
        return "Malformed JSON: " + str(err.get("ctx", {}).get("error", "cannot be parsed"))
    msg = str(err.get("msg", "Invalid value."))
    return msg if msg.endswith(".") else msg + "."


def validation_errors(raw: Sequence[Any]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for err in raw:
        field = "body" if err.get("type") == "json_invalid" else _field_path(err.get("loc", ()))
        item = {"field": field, "message": _message(err)}
        key = (item["field"], item["message"])
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def unexpected_response(exc: BaseException, method: str, path: str) -> JSONResponse:
    """A 500, its traceback logged; the client learns nothing of the inside."""
    logger.error("unhandled error on %s %s", method, path, exc_info=exc)
    return problem_response(
        500,
        "Internal server error",
        "An unexpected error occurred; it has been logged.",
        slug="internal-error",
        instance=path,
    )


def database_error_response(exc: BaseException, method: str, path: str) -> JSONResponse:
    """503 with Retry-After when the database is out of reach or out of room: the request
    changed nothing (its transaction never started or was rolled back) and can be sent
    again as is. Anything else from the driver is a 500 like any unexpected error."""
    if not database_unavailable(exc):
        return unexpected_response(exc, method, path)
    logger.warning("database unavailable on %s %s: %s", method, path, unavailable_summary(exc))
    error = ServiceUnavailable(
        "The database cannot take the request now; retry in a moment.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
    return render(error, path)


def install_handlers(app: FastAPI) -> None:
    """Every error leaves as problem+json; nothing ever shows a stack trace."""

    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        return render(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc.errors())
        if any(e["message"].startswith("Malformed JSON") for e in errors):
            detail = "The request body is not valid JSON."
        else:
            names = ", ".join(e["field"] for e in errors)
            detail = f"The request is invalid: {names}."
        return render(BadRequest(detail, errors=errors), request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        cls = _BY_STATUS.get(exc.status_code)
        if exc.status_code == 404:
            detail = f"No resource at {request.url.path}."
        elif exc.status_code == 405:
            # routing.MethodGuard answers a path's 405s with its whole Allow before routing;
            # what still reaches here (a route without the method) keeps its own, in order.
            detail = f"Method {request.method} is not allowed on {request.url.path}."
        else:
            detail = str(exc.detail)
        headers = dict(exc.headers) if exc.headers else None
        if headers and "Allow" in headers:
            headers["Allow"] = ", ".join(sorted(m.strip() for m in headers["Allow"].split(",")))
        return problem_response(
            exc.status_code,
            cls.title if cls else str(exc.detail),
            detail,
            slug=cls.slug if cls else f"http-{exc.status_code}",
            headers=headers,
            instance=request.url.path,
        )

    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return unexpected_response(exc, request.method, request.url.path)

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        return database_error_response(exc, request.method, request.url.path)

    # Registered on the classes (not only under Exception) so that Starlette's inner
    # exception middleware answers them: the outer one would log a second traceback.
    for kind in (DBAPIError, PoolTimeout, OSError):
        app.add_exception_handler(kind, _database)
    app.add_exception_handler(Exception, _unexpected)
