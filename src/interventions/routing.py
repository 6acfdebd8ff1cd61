"""Which methods a path takes, for 405 answers and their ``Allow`` header (RFC 9110 §15.5.6).

A path is the resource of the routes that match it **most literally**: comparing the route
templates segment by segment from the left, a literal segment wins over a parameter. So
``/interventions/v2/rs/curative`` is the resource of ``POST …/curative`` alone, although
``GET …/{interventionId}`` would match it too: a ``GET`` there is a 405 (``Allow: POST``), not
a 400 for a non-integer id, while ``GET …/rs/abc`` (no literal route) stays a 400. The methods a
path takes are the union over those routes (every method of every route of the same template).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi.routing import iter_route_contexts
from pydantic import BaseModel
from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from interventions.errors import BadRequest, method_not_allowed, render

_PARAM = re.compile(r"{[^}]*}")


@dataclass(frozen=True)
class RouteShape:
    template: str
    regex: re.Pattern[str]
    # Per segment, 0 for a literal and 1 for a parameter: the smaller, the more literal.
    rank: tuple[int, ...]
    methods: frozenset[str]
    # The query parameters the route declares; None when it is not ours to say (docs, files).
    query: frozenset[str] | None = None


def _shape(
    template: str, methods: Iterable[str], query: frozenset[str] | None = None
) -> RouteShape:
    regex, _, _ = compile_path(template)
    rank = tuple(1 if _PARAM.search(segment) else 0 for segment in template.split("/"))
    return RouteShape(template, regex, rank, frozenset(m.upper() for m in methods), query)


def _declared_query(context: Any) -> frozenset[str] | None:
    """The aliases of every query parameter of the route and of its dependencies."""
    dependant = getattr(context, "dependant", None)
    if dependant is None or not getattr(context, "include_in_schema", True):
        return None  # the docs pages and the like: not part of the contract
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        for param in current.query_params:
            model = param.field_info.annotation
            if isinstance(model, type) and issubclass(model, BaseModel):  # a query model
                names.update(f.alias or n for n, f in model.model_fields.items())
            else:
                names.add(param.alias)
        pending.extend(current.dependencies)
    return frozenset(names)


def route_shapes(routes: Sequence[BaseRoute]) -> list[RouteShape]:
    """Every HTTP route of ``routes`` (included routers flattened) that declares its methods."""
    shapes = []
    for context in iter_route_contexts(routes):
        path, methods = context.path, context.methods
        if path and methods:
            shapes.append(_shape(path, methods, _declared_query(context)))
    return shapes


class RouteIndex:
    """The shapes by first segment and segment count, so that a request tries the few routes
    that could match it rather than all of them (a path parameter never spans a ``/`` here;
    a route whose template could, or starts with a parameter, is tried for every path). Each
    list is in rank order, the most literal first (``resource_of`` stops at the first rank
    that matches)."""

    def __init__(self, shapes: Sequence[RouteShape]) -> None:
        by_key: dict[tuple[str, int], list[RouteShape]] = {}
        anywhere: list[RouteShape] = []
        for shape in shapes:
            segments = shape.template.split("/")
            if shape.rank[1:2] != (0,) or ":path}" in shape.template:
                anywhere.append(shape)
            else:
                by_key.setdefault((segments[1], len(segments)), []).append(shape)

        def ranked(found: list[RouteShape]) -> list[RouteShape]:
            return sorted(found, key=lambda s: s.rank)  # stable: declaration order kept

        self._by_key = {key: ranked(found + anywhere) for key, found in by_key.items()}
        self._anywhere = ranked(anywhere)

    def candidates(self, path: str) -> list[RouteShape]:
        segments = path.split("/")
        key = (segments[1] if len(segments) > 1 else "", len(segments))
        return self._by_key.get(key, self._anywhere)


def resource_of(shapes: Sequence[RouteShape], path: str) -> list[RouteShape]:
    """The routes whose resource ``path`` is: the most literal of those that match it.
    ``shapes`` in rank order (``RouteIndex``): the first match has the best rank, and the
    routes of that rank follow it."""
    found: list[RouteShape] = []
    for shape in shapes:
        if found and shape.rank != found[0].rank:
            break
        if shape.regex.match(path):
            found.append(shape)
    return found


def allowed_methods(resource: Sequence[RouteShape]) -> frozenset[str]:
    """The methods a path takes, from its routes (empty when none matches it: a 404)."""
    return frozenset().union(*(s.methods for s in resource))


def unknown_query(resource: Sequence[RouteShape], method: str, query: bytes) -> list[str]:
    """The query parameters that no route of the path (``resource``) taking ``method``
    declares."""
    declared: set[str] = set()
    for shape in resource:
        if method in shape.methods:
            if shape.query is None:
                return []
            declared |= shape.query
    names = dict.fromkeys(k for k, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True))
    return [name for name in names if name not in declared]


def allow_header(methods: Iterable[str]) -> str:
    return ", ".join(sorted(methods))


class MethodGuard:
    """Answers 405 with the path's whole ``Allow`` before routing, which would otherwise send
    ``GET /…/rs/curative`` to ``GET /…/rs/{interventionId}`` and list one route's methods only.
    Refuses (400) query parameters the route does not declare, as unknown body fields are
    (SPEC §2): a mistyped filter must not silently return everything. Like a malformed JSON
    body, that is answered before authentication. Paths that match no route, and requests the
    route takes, go on to the router unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._index: RouteIndex | None = None

    def index(self, application: Any) -> RouteIndex:
        """Built on the first request, when every route is in (the app is ``scope["app"]``)."""
        if self._index is None:
            self._index = RouteIndex(route_shapes(application.router.routes))
        return self._index

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :] or "/"
            # The path's routes, found once for both checks.
            resource = resource_of(self.index(scope["app"]).candidates(path), path)
            allowed = allowed_methods(resource)
            if allowed and scope["method"] not in allowed:
                response = method_not_allowed(scope["method"], path, allow_header(allowed))
                await response(scope, receive, send)
                return
            query: bytes = scope.get("query_string", b"")
            unknown = unknown_query(resource, scope["method"], query) if query else []
            if unknown:
                error = BadRequest(
                    f"Unknown query parameters: {', '.join(unknown)}.",
                    errors=[
                        {"field": name, "message": "Unknown query parameter."} for name in unknown
                    ],
                )
                await render(error, instance=path)(scope, receive, send)
                return
        await self.app(scope, receive, send)
