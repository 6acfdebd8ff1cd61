"""Route handlers without FastAPI's per-request machinery around them.

``LeanRoute`` is the ``route_class`` of every router: a FastAPI ``APIRoute`` in everything —
its dependant, its parameters, body and response model, its OpenAPI operation — except the
ASGI application that answers a request. FastAPI's (``get_request_handler`` inside
``request_response``) pays, on every request, for features this service does not use: two
exit stacks for yield dependencies, telemetry hooks, per-dependency checks of overrides,
generators, scopes and thread pools, four parameter passes per dependant even when it has no
parameters, and a fresh dependency cache key per call. Measured in one process
(``python -m bench.budget``: "GET one intervention" against "… with FastAPI's own handler"),
that machinery was ~20 % of the CPU of a detailed read.

The lean handler does the same work in the same order with FastAPI's own functions: the JSON
body read as FastAPI reads it, the dependencies solved depth first and cached per request by
their callable, then the path, query, header and cookie parameters and the body validated by
``request_params_to_args`` / ``request_body_to_args`` (so the errors, their order and their
``loc`` are FastAPI's), the endpoint called only when nothing failed, and its answer validated
and serialised by the route's response field with the route's options. Exceptions go to the
application's handlers as they would from FastAPI's route (``wrap_app_handling_exceptions``).

A route uses FastAPI's own handler when it needs what the lean one does not do: a sync or
generator endpoint or dependency, form bodies, WebSockets, security scopes, dependency
overrides, a route-level body limit, streamed answers. ``lean(route)`` says which one a
route has; ``tests/test_handlers.py`` sends the same requests through both and compares the
answers byte for byte.
"""

from __future__ import annotations

import email.message
import inspect
import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, params
from fastapi._body_limit import get_body_limit_error
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError, ResponseValidationError
from fastapi.routing import APIRoute
from fastapi.utils import is_body_allowed_for_status_code
from pydantic_core import PydanticUndefined
from starlette._exception_handler import wrap_app_handling_exceptions
from starlette.background import BackgroundTasks
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

_UNDEFINED: Any = PydanticUndefined  # no body (FastAPI's ``Undefined``: "missing", not null)


@dataclass(frozen=True)
class _Plan:
    """One dependant, flattened once: what solving it takes on every request."""

    call: Callable[..., Awaitable[Any]]
    name: str | None
    use_cache: bool
    dependencies: tuple[_Plan, ...]
    # (fields, the request's attribute they are read from), in FastAPI's order: path, query,
    # header, cookie parameters; only the kinds the dependant has.
    params: tuple[tuple[list[Any], str], ...]
    body: list[Any]
    request: str | None
    response: str | None
    background: str | None


def _plan(dependant: Dependant) -> _Plan | None:
    """The dependant's plan, or ``None`` when the lean handler does not do what it needs."""
    call = dependant.call
    if call is None or not inspect.iscoroutinefunction(call):
        return None  # sync (FastAPI runs it in a thread) or a generator (yield dependency)
    if (
        dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.security_scopes_param_name
        or dependant.own_oauth_scopes
        or dependant.parent_oauth_scopes
        or getattr(dependant, "concurrency", None) is not None
    ):
        return None
    subs = []
    for sub in dependant.dependencies:
        planned = _plan(sub)
        if planned is None:
            return None
        subs.append(planned)
    if any(isinstance(f.field_info, params.Form) for f in dependant.body_params):
        return None
    return _Plan(
        call=call,
        name=dependant.name,
        use_cache=dependant.use_cache,
        dependencies=tuple(subs),
        params=tuple(
            (fields, source)
            for fields, source in (
                (dependant.path_params, "path_params"),
                (dependant.query_params, "query_params"),
                (dependant.header_params, "headers"),
                (dependant.cookie_params, "cookies"),
            )
            if fields
        ),
        body=list(dependant.body_params),
        request=dependant.request_param_name,
        response=dependant.response_param_name,
        background=dependant.background_tasks_param_name,
    )


class _Solving:
    """One request's solving: its dependency cache, sub-response and background tasks."""

    __slots__ = ("background", "body", "cache", "embed", "request", "response")

    def __init__(self, request: Request, body: Any, embed: bool) -> None:
        self.request = request
        self.body = body
        self.embed = embed
        # Where dependencies and the endpoint set headers, cookies and a status (FastAPI's).
        response = Response()
        del response.headers["content-length"]
        response.status_code = None  # type: ignore[assignment]
        self.response = response
        self.cache: dict[Any, Any] = {}
        self.background: BackgroundTasks | None = None

    async def solve(self, plan: _Plan) -> tuple[dict[str, Any], list[Any]]:
        """The values to call ``plan`` with, and the validation errors (FastAPI's order)."""
        values: dict[str, Any] = {}
        errors: list[Any] = []
        cache = self.cache
        for sub in plan.dependencies:
            sub_values, sub_errors = await self.solve(sub)
            if sub_errors:
                errors.extend(sub_errors)
                continue
            if sub.use_cache and sub.call in cache:
                solved = cache[sub.call]
            else:
                solved = await sub.call(**sub_values)
            if sub.name is not None:
                values[sub.name] = solved
            cache.setdefault(sub.call, solved)
        request = self.request
        for fields, source in plan.params:
            found, failed = request_params_to_args(fields, getattr(request, source))
            values.update(found)
            errors.extend(failed)
        if plan.body:
            found, body_errors = await request_body_to_args(
                body_fields=plan.body, received_body=self.body, embed_body_fields=self.embed
            )
            values.update(found)
            errors.extend(body_errors)
        if plan.request:
            values[plan.request] = request
        if plan.background:
            if self.background is None:
                self.background = BackgroundTasks()
            values[plan.background] = self.background
        if plan.response:
            values[plan.response] = self.response
        return values, errors


def _is_json(content_type: str) -> bool:
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def lean_app(route: APIRoute) -> ASGIApp | None:
    """The route's lean ASGI application, or ``None`` when it needs FastAPI's own."""
    if route.dependency_overrides_provider is not None and getattr(
        route.dependency_overrides_provider, "dependency_overrides", None
    ):
        return None
    if (
        getattr(route, "max_body_size", None) is not None
        or getattr(route, "is_sse_stream", False)
        or getattr(route, "is_json_stream", False)
        or getattr(route, "stream_item_field", None) is not None
        or inspect.isasyncgenfunction(route.endpoint)
        or inspect.isgeneratorfunction(route.endpoint)
    ):
        return None
    plan = _plan(route.dependant)
    if plan is None:
        return None
    body_field = route.body_field  # a form's was refused with its parameters (``_plan``)
    strict = route.strict_content_type
    strict_content_type = strict.value if isinstance(strict, DefaultPlaceholder) else strict
    response_class = route.response_class
    dump_json = isinstance(response_class, DefaultPlaceholder)
    actual_class: type[Response] = (
        response_class.value if isinstance(response_class, DefaultPlaceholder) else response_class
    )
    status_code = route.status_code
    field = route.response_field
    options: dict[str, Any] = {
        "include": route.response_model_include,
        "exclude": route.response_model_exclude,
        "by_alias": route.response_model_by_alias,
        "exclude_unset": route.response_model_exclude_unset,
        "exclude_defaults": route.response_model_exclude_defaults,
        "exclude_none": route.response_model_exclude_none,
    }
    embed = route._embed_body_fields
    endpoint = plan.call

    async def read_body(request: Request) -> Any:
        """The body as FastAPI reads it: JSON for a JSON content type, else the bytes."""
        try:
            raw = await request.body()
            if not raw:
                return _UNDEFINED
            content_type = request.headers.get("content-type")
            if (not content_type and not strict_content_type) or (
                content_type and _is_json(content_type)
            ):
                return await request.json()
            return raw
        except json.JSONDecodeError as e:
            raise RequestValidationError(
                [
                    {
                        "type": "json_invalid",
                        "loc": ("body", e.pos),
                        "msg": "JSON decode error",
                        "input": {},
                        "ctx": {"error": e.msg},
                    }
                ],
                body=e.doc,
            ) from e
        except HTTPException:
            raise
        except Exception as e:
            # A body past a limit set on the application (FastAPI's max_body_size): its 413.
            if MAX_BODY_SIZE_SCOPE_KEY in request.scope and (limit := get_body_limit_error(e)):
                raise limit from e
            detail = "There was an error parsing the body"
            raise HTTPException(status_code=400, detail=detail) from e

    async def answer(request: Request) -> Response:
        body = await read_body(request) if body_field is not None else _UNDEFINED
        solving = _Solving(request, body, embed)
        values, errors = await solving.solve(plan)
        if errors:
            raise RequestValidationError(errors, body=None if body is _UNDEFINED else body)
        raw = await endpoint(**values)
        if isinstance(raw, Response):
            if raw.background is None:
                raw.background = solving.background
            return raw
        sub = solving.response
        status = status_code if status_code else sub.status_code
        arguments: dict[str, Any] = {"background": solving.background}
        if status is not None:
            arguments["status_code"] = status
        if sub.status_code:
            arguments["status_code"] = sub.status_code
        if field is None:
            response = actual_class(jsonable_encoder(raw), **arguments)
        else:
            value, failed = field.validate(raw, {}, loc=("response",))
            if failed:
                raise ResponseValidationError(errors=failed, body=raw)
            if dump_json:
                content = field.serialize_json(value, **options)
                response = Response(content=content, media_type="application/json", **arguments)
            else:
                response = actual_class(field.serialize(value, **options), **arguments)
        if not is_body_allowed_for_status_code(response.status_code):
            response.body = b""
        response.headers.raw.extend(sub.headers.raw)
        return response

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)

        async def respond(scope: Scope, receive: Receive, send: Send) -> None:
            response = await answer(request)
            await response(scope, receive, send)

        await wrap_app_handling_exceptions(respond, request)(scope, receive, send)

    return app


class LeanRoute(APIRoute):
    """An ``APIRoute`` answered by ``lean_app`` when it can be (see the module)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.fastapi_app = self.app  # FastAPI's own, kept for the comparison tests
        found = lean_app(self)
        self.lean = found is not None
        if found is not None:
            self.app = found


@contextmanager
def fastapi_handlers(app: FastAPI) -> Iterator[None]:
    """Every lean route of ``app`` answered by FastAPI's own handler until the block ends:
    what ``tests/test_handlers.py`` and ``bench/budget.py`` compare the lean handler with.
    (``create_app`` puts every route on the application's own router.)"""
    routes = [r for r in app.router.routes if isinstance(r, LeanRoute) and r.lean]
    lean = [r.app for r in routes]
    for route in routes:
        route.app = route.fastapi_app
    try:
        yield
    finally:
        for route, own in zip(routes, lean, strict=True):
            route.app = own
