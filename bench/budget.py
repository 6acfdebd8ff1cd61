"""Where a request's CPU goes: the service and the floor layer by layer, in one process.

``python -m bench.budget --scale small`` calls both ASGI applications directly (no uvicorn,
no sockets, no wrk: the same cost for both is left out) on the generated database, one
request at a time, and reports the CPU microseconds this process spends per call:

- **layers**: one statement through asyncpg and through SQLAlchemy; a pooled checkout with
  one statement each way; the service's middleware and routing alone (its endpoints replaced
  by an empty answer); ``GET /health``; ``GET /auth/v1/rs/me``; the detailed read; the same
  two for the floor;
- **scenarios**: every benchmarked request, service and floor, with the floor/service ratio.
  When the server is what limits throughput (one worker on these two cores), that ratio is
  the most the service/floor throughput can reach.

Each figure is the median of ``--rounds`` rounds, and the rounds interleave what they
compare, so that the host's speed changing minute to minute moves both sides together. Write
scenarios run on a snapshot restored after each round. Writes ``bench/results/budget-<scale>.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import asyncpg
from sqlalchemy import bindparam, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bench import bodies, config, harness, measure, pools, state
from bench.config import Scale

Call = Callable[[int], Awaitable[Any]]

READ_BY_ID = "SELECT * FROM interventions WHERE organization_id = $1 AND id = $2"


async def request(
    app: ASGIApp,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes | None = None,
) -> int:
    """One HTTP request straight into an ASGI application; its status."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    status = 0
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body or b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def auth_headers(session: pools.Session, body: bool = False) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"authorization", f"Bearer {session.access}".encode()),
        (b"x-session-token", session.session.encode()),
    ]
    if body:
        headers.append((b"content-type", b"application/json"))
    return headers


async def cpu_per_call(call: Call, calls: int, warm: int = 50) -> float:
    """CPU microseconds of this process per call, after ``warm`` calls not counted."""
    for i in range(warm):
        await call(i)
    began = time.process_time()
    for i in range(calls):
        await call(warm + i)
    return (time.process_time() - began) / calls * 1e6


@contextmanager
def empty_endpoints() -> Iterator[None]:
    """Every API route answers ``{}`` once selected: what is left is middleware and routing."""
    from fastapi.routing import APIRoute
    from starlette.responses import Response

    async def empty(_route: APIRoute, scope: Scope, receive: Receive, send: Send) -> None:
        await Response(b"{}", media_type="application/json")(scope, receive, send)

    handle = APIRoute.handle
    APIRoute.handle = empty  # type: ignore[method-assign]
    try:
        yield
    finally:
        APIRoute.handle = handle  # type: ignore[method-assign]


async def layers(scale: Scale, pool: pools.Pools, calls: int, rounds: int) -> dict[str, float]:
    from bench import floor as floor_sql
    from bench.floor import Floor, jwt_claims
    from interventions.app import create_app
    from interventions.auth.dependencies import _SESSION
    from interventions.db import Sql, table_of
    from interventions.handlers import fastapi_handlers
    from interventions.interventions.models import Intervention
    from interventions.interventions.repository import _BY_ID as _DETAIL
    from interventions.interventions.search import _LINKED
    from interventions.register.journal import _SUBJECT as _HISTORY

    app = create_app(measure.service_settings(scale))
    db = app.state.db
    floor = Floor(config.database_url(scale), config.SECRET)
    await floor.open()
    assert floor.pool is not None
    gets = pool.items["get"]
    session = pool.sessions[0]
    own = [item["id"] for item in gets if item["s"] == 1]
    org = session.organization_id
    raw = await asyncpg.connect(config.database_url(scale))
    table = table_of(Intervention)
    by_id = select(table).where(
        table.c.organization_id == bindparam("o"),
        table.c.deleted_at.is_(None),
        table.c.id == bindparam("i"),
    )
    by_id_sql = Sql(by_id, unscoped="bench")
    results: dict[str, list[float]] = {}

    async def get(target: ASGIApp, i: int) -> None:
        item = gets[i % len(gets)]
        path = f"/interventions/v2/rs/{item['id']}"
        status = await request(target, "GET", path, auth_headers(pool.sessions[item["s"] - 1]))
        assert status == 200, (path, status)

    async def path(target: ASGIApp, where: str, expected: int = 200) -> None:
        status = await request(target, "GET", where, auth_headers(session))
        assert status == expected, (where, status)

    try:
        async with db.engine.connect() as sa_conn:
            sa_conn = await sa_conn.execution_options(isolation_level="AUTOCOMMIT")

            async def asyncpg_statement(i: int) -> None:
                await raw.fetchrow(READ_BY_ID, org, own[i % len(own)])

            async def sqlalchemy_statement(i: int) -> None:
                (await sa_conn.execute(by_id, {"o": org, "i": own[i % len(own)]})).first()

            async def asyncpg_checkout(i: int) -> None:
                async with floor.pool.acquire() as conn:  # type: ignore[union-attr]
                    await conn.fetchrow(READ_BY_ID, org, own[i % len(own)])

            async def connection_checkout(i: int) -> None:
                async with db.engine.connect() as conn:
                    conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                    (await conn.execute(by_id, {"o": org, "i": own[i % len(own)]})).first()

            async def executor_checkout(i: int) -> None:
                async with db.transaction(write=False) as ex:
                    await ex.first(by_id_sql, o=org, i=own[i % len(own)])

            session_id = jwt_claims(session.access, config.SECRET.encode(), "access")["sid"]

            async def detail_sql_asyncpg(i: int) -> None:
                iid = own[i % len(own)]
                async with floor.pool.acquire() as conn:  # type: ignore[union-attr]
                    await conn.fetchrow(floor_sql.SESSION, session_id)
                    await conn.fetchrow(floor_sql.DETAIL, org, iid)
                    await conn.fetch(floor_sql.LINKED, iid, org)
                    await conn.fetch(floor_sql.JOURNAL_OF, org, "intervention", str(iid))

            async def detail_sql_sqlalchemy(i: int) -> None:
                iid = own[i % len(own)]
                async with db.engine.connect() as conn:
                    conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                    (await conn.execute(_SESSION.statement, {"session_id": session_id})).one()
                    params = {"id": iid, "organization_id": org}
                    (await conn.execute(_DETAIL.statement, params)).one()
                    (await conn.execute(_LINKED.statement, params)).all()
                    history = {**params, "subject_type": "intervention", "subject_id": str(iid)}
                    (await conn.execute(_HISTORY.statement, history)).all()

            async def detail_sql_executor(i: int) -> None:
                iid = own[i % len(own)]
                async with db.transaction(write=False) as ex:
                    await ex.first(_SESSION, session_id=session_id)
                    await ex.first(_DETAIL, organization_id=org, id=iid)
                    await ex.all(_LINKED, id=iid, organization_id=org)
                    await ex.all(
                        _HISTORY,
                        organization_id=org,
                        subject_type="intervention",
                        subject_id=str(iid),
                    )

            # (label, call, what the service's routes are for it: lean (None), replaced by an
            # empty answer, or FastAPI's own handlers)
            steps: list[tuple[str, Call, Callable[[], Any] | None]] = [
                ("one statement, asyncpg", asyncpg_statement, None),
                ("one statement, SQLAlchemy Core built once", sqlalchemy_statement, None),
                ("pool checkout + one statement, asyncpg", asyncpg_checkout, None),
                (
                    "pool checkout + one statement, SQLAlchemy connection",
                    connection_checkout,
                    None,
                ),
                ("pool checkout + one statement, db.Executor", executor_checkout, None),
                ("the read's 4 statements alone, asyncpg (floor's SQL)", detail_sql_asyncpg, None),
                (
                    "the read's 4 statements alone, SQLAlchemy execution",
                    detail_sql_sqlalchemy,
                    None,
                ),
                (
                    "the read's 4 statements alone, db.Executor (pooled driver connection)",
                    detail_sql_executor,
                    None,
                ),
                ("service: middleware + routing only", lambda i: get(app, i), empty_endpoints),
                ("service: GET /health", lambda i: path(app, "/health"), None),
                (
                    "floor: GET /health (a constant, no SQL)",
                    lambda i: path(floor.asgi, "/health"),
                    None,
                ),
                ("service: GET /auth/v1/rs/me", lambda i: path(app, "/auth/v1/rs/me"), None),
                ("service: GET one intervention", lambda i: get(app, i), None),
                (
                    "service: GET one intervention, FastAPI's own route handler",
                    lambda i: get(app, i),
                    lambda: fastapi_handlers(app),
                ),
                ("floor: GET one intervention", lambda i: get(floor.asgi, i), None),
            ]
            for _ in range(rounds):
                for label, call, routes in steps:
                    with routes() if routes is not None else nullcontext():
                        figure = await cpu_per_call(call, calls)
                    results.setdefault(label, []).append(figure)
    finally:
        await raw.close()
        await floor.close()
        await db.dispose()
    return {label: statistics.median(values) for label, values in results.items()}


async def scenarios(scale: Scale, pool: pools.Pools, calls: int, rounds: int) -> dict[str, Any]:
    """CPU per request of every scenario, service and floor alternating, state restored."""
    from bench.floor import Floor
    from interventions.app import create_app
    from interventions.handlers import fastapi_handlers

    app = create_app(measure.service_settings(scale))
    floor = Floor(config.database_url(scale), config.SECRET)
    await floor.open()
    conn = await asyncpg.connect(config.database_url(scale))
    out: dict[str, Any] = {}
    try:
        for name in bodies.SCENARIOS:
            count = min(calls, *(len(pool.items[k]) for k in _kinds(name)))
            requests = measure.plan(pool, name, count)
            figures: dict[str, list[float]] = {"service": [], "fastapi": [], "floor": []}
            targets: list[tuple[str, ASGIApp, Callable[[], Any]]] = [
                ("service", app, nullcontext),
                ("fastapi", app, lambda: fastapi_handlers(app)),
                ("floor", floor.asgi, nullcontext),
            ]
            for _ in range(rounds):
                for target, asgi, routes in targets:
                    marks = await state.snapshot(conn, pool)
                    try:
                        with routes():
                            figures[target].append(await _replay(asgi, pool, requests))
                    finally:
                        await state.restore(conn, marks, vacuum=False)
            service = statistics.median(figures["service"])
            floor_cpu = statistics.median(figures["floor"])
            out[name] = {
                "requests": count,
                "service_us": service,
                "fastapi_us": statistics.median(figures["fastapi"]),
                "floor_us": floor_cpu,
                "ratio": floor_cpu / service,
            }
    finally:
        await conn.close()
        await floor.close()
        await app.state.db.dispose()
    return out


def _kinds(name: str) -> set[str]:
    return set(bodies.MIXED) if name == "mixed" else {name}


async def _replay(
    app: ASGIApp, pool: pools.Pools, requests: list[tuple[str, dict[str, Any], int]]
) -> float:
    """CPU microseconds per request over ``requests`` (the first tenth warms up, uncounted)."""
    warm = max(1, len(requests) // 10)
    began = 0.0
    for index, (name, item, n) in enumerate(requests):
        if index == warm:
            began = time.process_time()
        method, path, body = bodies.build(name, item, n)
        status = await request(
            app,
            method,
            path,
            auth_headers(pool.sessions[item["s"] - 1], body is not None),
            bodies.encode(body),
        )
        if not 200 <= status < 300:
            raise RuntimeError(f"{method} {path} answered {status}: writes must succeed")
    return (time.process_time() - began) / (len(requests) - warm) * 1e6


def render(scale: Scale, found: dict[str, Any], calls: int, rounds: int) -> str:
    when = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    commit = harness.source()["commit"][:10]
    lines = [
        f"# Where a request's CPU goes, at `{scale.name}` scale",
        "",
        f"Run {when}; service at commit `{commit}`. One process, both applications"
        " called directly (no uvicorn, no sockets), one request at a time; CPU of this process"
        f" per call, median of {rounds} interleaved rounds of up to {calls} calls."
        f" Reproduce: `.venv/bin/python -m bench.budget --scale {scale.name}`.",
        "",
        "## Layers",
        "",
        "| what | CPU µs per call |",
        "|---|--:|",
    ]
    lines += [f"| {label} | {value:.0f} |" for label, value in found["layers"].items()]
    lines += [
        "",
        "## Scenarios",
        "",
        "| scenario | requests | service CPU µs | service with FastAPI's route handlers µs"
        " | floor CPU µs | floor / service |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for name, row in found["scenarios"].items():
        lines.append(
            f"| {name} | {row['requests']} | {row['service_us']:.0f} | {row['fastapi_us']:.0f}"
            f" | {row['floor_us']:.0f} | **{row['ratio']:.2f}** |"
        )
    lines += [
        "",
        "When one server process is what limits throughput, floor / service CPU is the most"
        " the service/floor throughput ratio can be: the 0.7× target needs it at 0.7 or above.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(config.SCALES), default="small")
    parser.add_argument("--calls", type=int, default=300, help="calls per round and layer")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    scale = config.SCALES[args.scale]

    async def run() -> dict[str, Any]:
        sessions = await measure.login_in_process(scale)
        conn = await asyncpg.connect(config.database_url(scale))
        try:
            pool = await pools.build(conn, sessions)
        finally:
            await conn.close()
        return {
            "layers": await layers(scale, pool, args.calls, args.rounds),
            "scenarios": await scenarios(scale, pool, args.calls, args.rounds),
        }

    import uvloop

    found = uvloop.run(run())
    text = render(scale, found, args.calls, args.rounds)
    path = config.RESULTS_DIR / f"budget-{scale.name}.md"
    path.write_text(text, encoding="utf-8")
    print(text)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
