"""``create_app()``: the HTTP API with its routers, error handlers and transport rules."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi.telemetry import TelemetryConfig
from starlette.responses import JSONResponse

from interventions import __version__
from interventions.auth.dependencies import SECURITY_SCHEMES, current_caller
from interventions.auth.router import router as auth_router
from interventions.config import Settings, get_settings
from interventions.db import Database, create_database_from_settings
from interventions.docs import install_docs
from interventions.errors import (
    RETRY_AFTER_SECONDS,
    install_handlers,
    problem_response,
    unavailable_summary,
)
from interventions.handlers import LeanRoute
from interventions.http import BodyGuard
from interventions.idempotency.middleware import METHODS as IDEMPOTENT_METHODS
from interventions.idempotency.middleware import IdempotencyKeys, document_key
from interventions.integrations.provider_links.router import routers as provider_link_routers
from interventions.integrations.router import router as integrations_router
from interventions.integrations.webhooks.router import router as webhooks_router
from interventions.interventions.mobile import router as mobile_router
from interventions.interventions.web import router as interventions_router
from interventions.notifications.router import router as notifications_router
from interventions.openapi import (
    default_operation_id,
    document_limits,
    errors_for,
    finish_document,
)
from interventions.organizations.router import routers as organization_routers
from interventions.references.router import routers as reference_routers
from interventions.register.printing.router import router as register_printing_router
from interventions.register.router import router as register_router
from interventions.routing import MethodGuard
from interventions.storage.router import router as storage_router
from interventions.storage.service import UPLOAD_PREFIX, make_storage
from interventions.transactions import install_transactions
from interventions.worker import background_work

logger = logging.getLogger(__name__)

# FastAPI's native OpenTelemetry off unless the operator asks for it (config.py).
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}

DESCRIPTION = """
Plan, record, sign and verify the regulatory checks, repairs and drills of buildings open to
the public.

Every endpoint but login, refresh, health and signed uploads needs **both**
`Authorization: Bearer <accessToken>` and `x-session-token: <sessionToken>` from
`POST /auth/v1/rs/login/credentials`. Errors are RFC 9457 problem details.

Enums: intervention `type` 1 preventive · 2 curative · 3 training exercise;
`status` 1 toSchedule · 2 scheduled · 3 inProgress · 4 toVerify · 5 validated · 6 rejected ·
7 cancelled; `creationStatus` 0 toScheduled · 1 scheduled · 2 done; `decision` 1 accept ·
2 reject; `checkType` 1 planned · 2 unplanned; anomaly `status` 0 open · 1 in repair ·
2 resolved.
"""


def _depends_on(dependant: Dependant, call: Callable[..., Any]) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)


def document_security(schema: dict[str, Any], routers: Sequence[APIRouter]) -> None:
    """Both headers, as one requirement, on every operation that authenticates its caller;
    ``Idempotency-Key`` on those that take one."""
    schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    requirement: list[dict[str, list[str]]] = [{name: [] for name in SECURITY_SCHEMES}]
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and _depends_on(route.dependant, current_caller):
                operations = schema["paths"][route.path_format]
                for method in route.methods or ():
                    operations[method.lower()]["security"] = requirement
                    if method in IDEMPOTENT_METHODS:
                        document_key(operations[method.lower()])


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    db = database or create_database_from_settings(settings)
    secret = settings.resolved_secret()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The embedded default has no separate worker: the serving process relays the
        # outbox and plans routines itself. With PostgreSQL, run `interventions worker`.
        in_process = settings.relay_in_process
        if in_process is None:
            in_process = db.sqlite
        async with background_work(db, settings, enabled=in_process):
            yield
        await db.dispose()

    app = FastAPI(
        title="Interventions service",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=default_operation_id,
        docs_url=None,  # FastAPI's pages load their assets from a CDN: see install_docs
        redoc_url=None,
        telemetry=None if settings.opentelemetry else NO_TELEMETRY,
    )
    app.router.route_class = LeanRoute  # /health and the docs pages (handlers.py)
    app.state.settings = settings
    app.state.db = db
    app.state.secret = secret
    app.state.storage = make_storage(settings, secret)

    install_handlers(app)
    install_docs(app)
    routers = (
        auth_router,
        interventions_router,
        mobile_router,
        notifications_router,
        storage_router,
        register_router,
        *reference_routers,
        *organization_routers,
        register_printing_router,
        integrations_router,
        webhooks_router,
        *provider_link_routers,
    )
    for router in routers:
        # The routes themselves, not ``include_router``: FastAPI matches an included router
        # by walking its routes, then walks them again to pick one, on every request (~25 µs
        # of CPU per GET, bench/README.md log step 24). Every route already carries its
        # router's prefix and tags, and no router has dependencies of its own.
        assert not router.dependencies, "a router's own dependencies need include_router"
        app.router.routes.extend(router.routes)

    @app.get(
        "/health",
        tags=["operations"],
        summary="200 when the database answers, 503 otherwise",
        responses=errors_for(503, auth=False),
    )
    async def health(request: Request) -> JSONResponse:
        try:
            # Its own deadline, shorter than connecting may take: a probe must not hang.
            async with asyncio.timeout(settings.health_timeout_seconds):
                async with request.app.state.db.transaction(write=False) as executor:
                    await executor.ping()
        except Exception as exc:
            # One line, as for any request the database cannot take; no traceback per probe.
            logger.warning("health check: database unavailable: %s", unavailable_summary(exc))
            return problem_response(
                503,
                "Service unavailable",
                "The database cannot be reached.",
                slug="unavailable",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        return JSONResponse({"status": "ok"})

    # The router tries routes in turn: the intervention endpoints, which take most of the
    # traffic, first (GET one intervention ~23 µs of CPU less; bench/README.md log step 25).
    # No two routes of different routers share a path, so the order chooses nothing; the
    # OpenAPI document keeps the order they were declared in.
    documented = list(app.router.routes)
    hot = [r for r in documented if getattr(r, "path", "").startswith("/interventions/v2/")]
    app.router.routes[:] = hot + [r for r in documented if r not in hot]

    def raw_body_limit(path: str) -> int | None:
        return settings.signature_max_bytes if path.startswith(UPLOAD_PREFIX) else None

    # Innermost: a keyed request's answer is stored in its transaction (idempotency/), which
    # ends before its answer starts (transactions.py).
    app.add_middleware(IdempotencyKeys)
    install_transactions(app)
    app.add_middleware(
        BodyGuard, max_body_bytes=settings.max_body_bytes, raw_body_limit=raw_body_limit
    )
    # Outermost: a method the path does not take is a 405 before its body is looked at.
    app.add_middleware(MethodGuard)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=documented
        )
        document_security(schema, routers)
        document_limits(schema, signature_max_bytes=settings.signature_max_bytes)
        app.openapi_schema = finish_document(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
