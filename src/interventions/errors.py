"""Errors carry their status; one set of handlers renders them as RFC 9457 problem+json."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
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


class Conflict(AppError):
    status = 409
    slug = "conflict"
    title = "Conflict with the current state"


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


_BY_STATUS: dict[int, type[AppError]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        Unprocessable,
        TooManyRequests,
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
            detail = f"Method {request.method} is not allowed on {request.url.path}."
        else:
            detail = str(exc.detail)
        return problem_response(
            exc.status_code,
            cls.title if cls else str(exc.detail),
            detail,
            slug=cls.slug if cls else f"http-{exc.status_code}",
            headers=dict(exc.headers) if exc.headers else None,
            instance=request.url.path,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500,
            "Internal server error",
            "An unexpected error occurred; it has been logged.",
            slug="internal-error",
            instance=request.url.path,
        )
