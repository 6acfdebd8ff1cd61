"""The lean route handlers (handlers.py) answer as FastAPI's own would.

Every test of the suite goes through the lean handlers; these tests send the same requests
through FastAPI's own handler too (``LeanRoute.fastapi_app``, swapped in for the length of one
request) and compare the answers: byte for byte for what changes nothing (reads, refusals of
every kind), and with the created ids and times set aside for writes that succeed.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute

from interventions.handlers import LeanRoute, fastapi_handlers
from tests.factories import Factory, Org
from tests.helpers import (
    CURATIVE,
    ME,
    MISSING,
    NOTIFICATIONS,
    PROFILES,
    RS,
    TRAINING,
    create,
    curative_body,
    curative_body_on,
    intervention_url,
    training_create_body,
)


def test_every_route_is_lean(app: FastAPI) -> None:
    """A route falling back to FastAPI's handler (a sync endpoint, a yield dependency…)
    would silently cost the machinery again: none does today."""
    routes = [r for r in app.router.routes if isinstance(r, APIRoute)]
    assert len(routes) > 90
    assert [r.path for r in routes if not (isinstance(r, LeanRoute) and r.lean)] == []


def test_fastapi_handlers_swaps_this_applications_routes_and_back(app: FastAPI) -> None:
    """The comparisons below mean something only if FastAPI's handler does answer inside
    the block, and the lean one again after it."""
    routes = [r for r in app.router.routes if isinstance(r, LeanRoute)]
    lean = [r.app for r in routes]
    with fastapi_handlers(app):
        assert all(r.app is r.fastapi_app for r in routes)
        assert all(r.app is not own for r, own in zip(routes, lean, strict=True))
    assert all(r.app is own for r, own in zip(routes, lean, strict=True))


Answer = tuple[int, list[tuple[str, str]], bytes]


async def both(
    app: FastAPI, client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
) -> tuple[Answer, Answer]:
    """The same request answered by the lean handler, then by FastAPI's."""

    def answer(r: httpx.Response) -> Answer:
        headers = [(k, v) for k, v in r.headers.multi_items() if k not in ("date",)]
        return r.status_code, headers, r.content

    lean = answer(await client.request(method, url, **kwargs))
    with fastapi_handlers(app):
        own = answer(await client.request(method, url, **kwargs))
    return lean, own


def _unchanging_requests(org: Org, iid: int) -> list[tuple[str, str, dict[str, Any]]]:
    admin, viewer = org.admin.headers, org.viewer.headers
    json_headers = {**admin, "content-type": "application/json"}
    valid = curative_body(org)
    return [
        # reads
        ("GET", intervention_url(iid), {"headers": admin}),
        ("GET", intervention_url(iid), {"headers": viewer}),
        ("GET", RS, {"headers": admin, "params": {"page": 1, "limit": 5}}),
        ("GET", f"{RS}/lifecycle", {"headers": admin}),
        ("GET", ME, {"headers": admin}),
        ("GET", PROFILES, {"headers": admin}),
        ("GET", NOTIFICATIONS, {"headers": admin}),
        ("GET", f"/sites/v1/rs/{org.site_ids[0]}", {"headers": admin}),
        ("GET", "/sites/v1/rs", {"headers": admin, "params": {"limit": 2}}),
        ("GET", "/health", {}),
        # refusals: authentication, then the parameters, then the body
        ("GET", intervention_url(iid), {}),
        ("GET", intervention_url(iid), {"headers": {"authorization": "Bearer nonsense"}}),
        ("GET", intervention_url("abc"), {"headers": admin}),
        ("GET", intervention_url("abc"), {}),
        ("GET", intervention_url(MISSING), {"headers": admin}),
        ("GET", intervention_url(2**60), {"headers": admin}),
        ("GET", RS, {"headers": admin, "params": {"page": "zero", "limit": -1}}),
        ("GET", RS, {"headers": admin, "params": {"status": "7"}}),
        ("POST", CURATIVE, {"headers": json_headers, "content": b"{not json"}),
        ("POST", CURATIVE, {"headers": json_headers, "content": b""}),
        ("POST", CURATIVE, {"headers": json_headers, "content": b"[1, 2]"}),
        ("POST", CURATIVE, {"headers": admin, "content": json.dumps(valid).encode()}),
        (
            "POST",
            CURATIVE,
            {"headers": {**admin, "content-type": "text/plain"}, "content": b"{}"},
        ),
        ("POST", CURATIVE, {"headers": json_headers, "json": {**valid, "type": 9}}),
        ("POST", CURATIVE, {"headers": json_headers, "json": {**valid, "unknown": 1}}),
        ("POST", CURATIVE, {"headers": json_headers, "json": {}}),
        (
            "POST",
            CURATIVE,
            {"headers": {**viewer, "content-type": "application/json"}, "json": valid},
        ),
        ("POST", CURATIVE, {"json": valid}),
        ("PATCH", f"{RS}/{iid}/verify", {"headers": json_headers, "json": {"x": 1}}),
        ("PATCH", f"{RS}/abc/verify", {"headers": json_headers, "json": {}}),
        ("DELETE", intervention_url("abc"), {"headers": admin}),
        ("PATCH", f"{TRAINING}/{MISSING}", {"headers": json_headers, "json": {}}),
        ("POST", "/sites/v1/rs", {"headers": json_headers, "json": {"name": ""}}),
    ]


async def test_refusals_and_reads_answer_the_same(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    iid = await create(client, CURATIVE, curative_body(org), org)
    requests = _unchanging_requests(org, iid)
    statuses = set()
    for method, url, kwargs in requests:
        lean, own = await both(app, client, method, url, **kwargs)
        assert lean == own, (method, url, kwargs)
        statuses.add(lean[0])
    # The corpus covers the answers it is meant to: success, each kind of refusal.
    assert {200, 400, 401, 403, 404} <= statuses


_VOLATILE = re.compile(rb'"(id|createdAt|updatedAt|codePin)":("[^"]*"|\d+)')


def _without_volatile(body: bytes) -> bytes:
    return _VOLATILE.sub(rb'"\1":_', body)


def _shape(value: Any) -> Any:
    """The members and the types of a JSON document, not its values."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


async def test_successful_writes_answer_the_same(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    headers = {**org.admin.headers, "content-type": "application/json"}
    # The same drill planned twice: the same answer but for its id, times and PIN.
    body = training_create_body(org)
    lean, own = await both(app, client, "POST", TRAINING, headers=headers, json=body)
    assert lean[0] == own[0] == 201, (lean, own)
    assert [k for k, _ in lean[1]] == [k for k, _ in own[1]]
    assert _without_volatile(lean[2]) == _without_volatile(own[2])
    assert lean[2] != own[2]  # two drills were planned, one by each handler
    # A curative intervention on each of two anomalies (one repairs an anomaly once).
    first, second = org.anomaly_ids[:2]
    lean_r = await client.post(CURATIVE, headers=headers, json=curative_body_on(org, [first]))
    with fastapi_handlers(app):
        own_r = await client.post(CURATIVE, headers=headers, json=curative_body_on(org, [second]))
    assert lean_r.status_code == own_r.status_code == 201, (lean_r.text, own_r.text)
    assert list(lean_r.headers) == list(own_r.headers)
    assert _shape(lean_r.json()) == _shape(own_r.json())
