"""SQL statements per request, counted in-process, for the service and for the floor.

The service is ``create_app`` against the bench database behind an httpx ASGI client; the
executor's observers (``db.Executor.observers``) record every statement, BEGIN and COMMIT
counted as transactions. The floor is counted with asyncpg's query logger, which sees the
same two kinds. Requests are sent one at a time, so every statement
belongs to the request in flight. Each scenario runs on a snapshot that is restored after.

Also measured: a curative intervention on 1, 10 and 100 anomalies (the issue requires the
count not to grow with the request).

``python -m bench.measure --scale small`` prints the counts (the service must not be running
on the same database with writes in flight).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
from sqlalchemy import event

from bench import bodies, config, pools, state
from bench.config import Scale

REQUESTS_PER_SCENARIO = 20
ANOMALY_COUNTS = (1, 10, 100)
TX_STATEMENT = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK)\b", re.IGNORECASE)
_TARGET = re.compile(r"^(SELECT .*? FROM|INSERT INTO|UPDATE|DELETE FROM)\s+(\w+)", re.IGNORECASE)


def shape(sql: str) -> str:
    """``SELECT interventions``, ``INSERT intervention_sites``…: what a statement does."""
    match = _TARGET.match(sql)
    if match is None:
        return sql.split(" ", 1)[0].upper()
    return f"{match.group(1).split(' ', 1)[0].upper()} {match.group(2)}"


def parity(service: dict[str, Any], floor: dict[str, Any]) -> dict[str, Any]:
    """Scenarios where the floor's statements differ from the service's (kind and table, in
    order). The floor is written by hand after the service: this catches the service moving.
    """
    out = {}
    for name, measured in service.items():
        ours = [shape(s) for s in measured.get("example", [])]
        theirs = [shape(s) for s in floor.get(name, {}).get("example", [])]
        if ours != theirs or measured["tx"] != floor.get(name, {}).get("tx"):
            out[name] = {"service": ours, "floor": theirs}
    return out


@dataclass
class StatementLog:
    """Statements and transactions seen since the last ``reset``."""

    statements: list[str] = field(default_factory=list)
    transactions: int = 0

    def reset(self) -> None:
        self.statements = []
        self.transactions = 0

    def statement(self, sql: str) -> None:
        if TX_STATEMENT.match(sql):
            self.transactions += 1
        else:
            self.statements.append(" ".join(sql.split()))


@dataclass
class Measured:
    """One scenario's counts over its requests."""

    sql: list[int] = field(default_factory=list)
    tx: list[int] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    example: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        n = max(1, len(self.sql))
        return {
            "sql": round(sum(self.sql) / n, 2),
            "sql_min": min(self.sql, default=0),
            "sql_max": max(self.sql, default=0),
            "tx": round(sum(self.tx) / n, 2),
            "requests": len(self.sql),
            "errors": sum(v for k, v in self.statuses.items() if not 200 <= k < 300),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "example": list(self.example),
        }


Send = Callable[[str, str, dict[str, str], bytes | None], Awaitable[httpx.Response]]


async def _run(
    send: Send,
    log: StatementLog,
    sessions: Sequence[pools.Session],
    requests: Sequence[tuple[str, dict[str, Any], int]],
    warmup: int = 0,
) -> Measured:
    measured = Measured()
    for index, (name, item, n) in enumerate(requests):
        method, path, body = bodies.build(name, item, n)
        session = sessions[item["s"] - 1]
        headers = {
            "Authorization": f"Bearer {session.access}",
            "x-session-token": session.session,
            "Content-Type": "application/json",
        }
        log.reset()
        response = await send(method, path, headers, bodies.encode(body))
        if index < warmup:
            # First uses of a connection or statement (type introspection, prepares): not
            # what a request costs once the server is warm.
            continue
        measured.sql.append(len(log.statements))
        measured.tx.append(log.transactions)
        measured.statuses[response.status_code] += 1
        if not measured.example:
            measured.example = list(log.statements)
    return measured


def plan(pool: pools.Pools, name: str, count: int) -> list[tuple[str, dict[str, Any], int]]:
    """The requests of one scenario: distinct items, the mixed sequence for ``mixed``."""
    used: Counter[str] = Counter()
    out = []
    for n in range(count):
        kind = bodies.MIXED[n % len(bodies.MIXED)] if name == "mixed" else name
        items = pool.items[kind]
        out.append((kind, items[used[kind] % len(items)], n + 1))
        used[kind] += 1
    return out


def anomaly_plan(pool: pools.Pools) -> dict[int, list[tuple[str, dict[str, Any], int]]]:
    """Curative bodies on 1, 10 and 100 open anomalies of one organisation, twice each."""
    first = pool.items["curative"][0]
    same_org = [item["a"][0] for item in pool.items["curative"] if item["s"] == first["s"]]
    plans: dict[int, list[tuple[str, dict[str, Any], int]]] = {}
    cursor = 0
    for size in ANOMALY_COUNTS:
        plans[size] = []
        for n in range(2):
            ids = same_org[cursor : cursor + size]
            cursor += size
            plans[size].append(("curative", {**first, "a": ids}, n + 1))
    return plans


async def _scenarios(
    send: Send, log: StatementLog, conn: asyncpg.Connection, pool: pools.Pools
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in bodies.SCENARIOS:
        count = 50 if name == "mixed" else REQUESTS_PER_SCENARIO
        marks = await state.snapshot(conn, pool)
        try:
            requests = plan(pool, name, 2 * count)
            measured = await _run(send, log, pool.sessions, requests, warmup=count)
            results[name] = measured.summary()
        finally:
            await state.restore(conn, marks, vacuum=False)
    marks = await state.snapshot(conn, pool)
    try:
        for size, requests in anomaly_plan(pool).items():
            measured = await _run(send, log, pool.sessions, requests)
            results[f"curative_{size}_anomalies"] = measured.summary()
    finally:
        await state.restore(conn, marks, vacuum=False)
    return results


def _asgi_sender(client: httpx.AsyncClient) -> Send:
    async def send(
        method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> httpx.Response:
        return await client.request(method, path, headers=headers, content=body)

    return send


def service_settings(scale: Scale) -> Any:
    """The service's settings for an in-process measurement on the generated database."""
    from interventions.config import Settings

    return Settings(
        database_url=config.database_url(scale),
        secret_key=config.SECRET,
        storage_dir=config.RAW_DIR / "storage",
        outbox_dir=config.RAW_DIR / "outbox",
    )


async def measure_service(scale: Scale, pool: pools.Pools) -> dict[str, Any]:
    """Statements per request of the service, in-process."""
    from interventions.app import create_app
    from interventions.db import Executor

    app = create_app(service_settings(scale))
    log = StatementLog()
    engine = app.state.db.engine.sync_engine

    def before_cursor_execute(*args: Any) -> None:
        log.statement(args[2])

    event.listen(engine, "before_cursor_execute", before_cursor_execute)  # none expected
    # Every statement of the service, BEGIN and COMMIT included, is run by db.Executor, which
    # tells its observers (nothing goes through SQLAlchemy's execution any more).
    Executor.observers.append(log.statement)
    conn = await asyncpg.connect(config.database_url(scale))
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            return await _scenarios(_asgi_sender(client), log, conn, pool)
    finally:
        Executor.observers.remove(log.statement)
        await conn.close()
        await app.state.db.dispose()


async def measure_floor(scale: Scale, pool: pools.Pools) -> dict[str, Any]:
    """Statements per request of the floor, in-process (asyncpg's query logger)."""
    from bench import floor

    log = StatementLog()
    app = floor.Floor(config.database_url(scale), config.SECRET, on_query=log.statement)
    await app.open()
    conn = await asyncpg.connect(config.database_url(scale))
    transport = httpx.ASGITransport(app=app.asgi)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            return await _scenarios(_asgi_sender(client), log, conn, pool)
    finally:
        await conn.close()
        await app.close()


async def login_in_process(scale: Scale) -> list[pools.Session]:
    """Sessions for a stand-alone measurement, through the service's own login endpoint."""
    from interventions.app import create_app

    app = create_app(service_settings(scale))
    transport = httpx.ASGITransport(app=app)
    sessions = []
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for org, user, email in pools.load_accounts(scale):
                response = await client.post(
                    "/auth/v1/rs/login/credentials",
                    json={"email": email, "password": config.PASSWORD},
                )
                response.raise_for_status()
                data = response.json()["data"]
                sessions.append(
                    pools.Session(org, user, user, data["accessToken"], data["sessionToken"])
                )
    finally:
        await app.state.db.dispose()
    return sessions


async def measure(scale: Scale, sessions: list[pools.Session]) -> dict[str, Any]:
    conn = await asyncpg.connect(config.database_url(scale))
    try:
        pool = await pools.build(conn, sessions)
    finally:
        await conn.close()
    service = await measure_service(scale, pool)
    floor = await measure_floor(scale, pool)
    return {"service": service, "floor": floor, "parity": parity(service, floor)}


def main() -> None:
    parser = argparse.ArgumentParser(description="SQL statements per request, in-process.")
    parser.add_argument("--scale", choices=sorted(config.SCALES), default="small")
    parser.add_argument("--target", choices=("service", "floor", "both"), default="both")
    args = parser.parse_args()
    scale = config.SCALES[args.scale]

    async def run() -> dict[str, Any]:
        sessions = await login_in_process(scale)
        conn = await asyncpg.connect(config.database_url(scale))
        try:
            pool = await pools.build(conn, sessions)
        finally:
            await conn.close()
        out: dict[str, Any] = {}
        if args.target in ("service", "both"):
            out["service"] = await measure_service(scale, pool)
        if args.target in ("floor", "both"):
            out["floor"] = await measure_floor(scale, pool)
        if args.target == "both":
            out["parity"] = parity(out["service"], out["floor"])
        return out

    print(json.dumps(asyncio.run(run()), indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
