"""What the journal costs a write, in-process: CPU per request and the part spent appending.

``python -m bench.journal_cost --modes rfc8785,fast`` sends each write scenario's requests
(``bodies.py``) one at a time to ``create_app`` on the small register behind an httpx ASGI
client, and reports per scenario the server's CPU per request (``time.process_time`` around
the application call: the client is not counted) and, inside it, the journal's append just
before COMMIT (``flush``: the head upsert, the hashes, the entries' insert), the entries'
insert alone (what the history insert cost before) and the hashes alone. ``--modes`` runs
with ``journal.canonical`` as committed (``fast``) or as ``rfc8785.dumps`` (``rfc8785``),
in turns. On a tree without the journal (``--modes plain``) only the CPU per request is
measured: run it there with ``PYTHONPATH=<tree>/src:<tree>``, alternating with this one.
Every request must succeed; the register is restored afterwards (``state.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx

from bench import bodies, config, measure, pools, state

WARMUP = 10
Totals = dict[str, float]


def instrument(totals: Totals) -> Any:
    """Time the journal's append, its insert and its hashes (``None``: no journal here)."""
    try:
        from interventions.register import journal
    except ImportError:
        return None
    from interventions.db import Executor

    flush, execute, many, entry_hash = (
        journal.flush,
        Executor.execute,
        Executor.many,
        journal.entry_hash,
    )

    def timed(key: str, call: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
        async def run() -> Any:
            began = time.process_time()
            try:
                return await call()
            finally:
                totals[key] += time.process_time() - began

        return run()

    async def timed_flush(db: Any) -> None:
        await timed("flush", lambda: flush(db))

    async def timed_execute(self: Any, sql: Any, **params: Any) -> int:
        if sql is journal._INSERT:
            return int(await timed("insert", lambda: execute(self, sql, **params)))
        return await execute(self, sql, **params)

    async def timed_many(self: Any, sql: Any, rows: Any) -> None:
        if sql is journal._INSERT:
            await timed("insert", lambda: many(self, sql, rows))
        else:
            await many(self, sql, rows)

    def timed_hash(document: dict[str, Any]) -> str:
        began = time.process_time()
        try:
            return entry_hash(document)
        finally:
            totals["hash"] += time.process_time() - began

    Executor.before_commit = timed_flush
    Executor.execute = timed_execute  # type: ignore[method-assign]
    Executor.many = timed_many  # type: ignore[method-assign]
    journal.entry_hash = timed_hash
    return journal


async def run(modes: list[str], requests: int, rounds: int) -> dict[str, list[Totals]]:
    from interventions.app import create_app

    scale = config.SCALES["small"]
    totals: Totals = {"cpu": 0.0, "flush": 0.0, "insert": 0.0, "hash": 0.0}
    journal = instrument(totals)
    fast = journal.canonical if journal is not None else None
    sessions = await measure.login_in_process(scale)
    conn = await asyncpg.connect(config.database_url(scale))
    pool = await pools.build(conn, sessions)
    marks = await state.snapshot(conn, pool)
    app = create_app(measure.service_settings(scale))

    async def timed_app(scope: Any, receive: Any, send: Any) -> None:
        began = time.process_time()
        try:
            await app(scope, receive, send)
        finally:
            totals["cpu"] += time.process_time() - began

    used = dict.fromkeys(bodies.WRITES, 0)
    out: dict[str, list[Totals]] = {}
    sent = 0
    transport = httpx.ASGITransport(app=timed_app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for _ in range(rounds):
                for mode in modes:
                    if journal is not None:
                        journal.canonical = journal.rfc8785.dumps if mode == "rfc8785" else fast
                    for name in bodies.WRITES:
                        for k in range(WARMUP + requests):
                            if k == WARMUP:
                                totals.update(dict.fromkeys(totals, 0.0))
                            items = pool.items[name]
                            item = items[used[name] % len(items)]
                            used[name] += 1
                            sent += 1
                            method, path, body = bodies.build(name, item, sent)
                            session = pool.sessions[item["s"] - 1]
                            headers = {
                                "Authorization": f"Bearer {session.access}",
                                "x-session-token": session.session,
                                "Content-Type": "application/json",
                            }
                            response = await client.request(
                                method, path, headers=headers, content=bodies.encode(body)
                            )
                            assert response.status_code < 300, (name, response.text[:300])
                        per_request = {k: v / requests * 1e6 for k, v in totals.items()}
                        out.setdefault(f"{mode}:{name}", []).append(per_request)
    finally:
        await app.state.db.dispose()
        await state.restore(conn, marks, vacuum=False)
        await conn.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="fast", help="fast, rfc8785 (journal) or plain")
    parser.add_argument("--requests", type=int, default=50, help="per scenario and round")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    result = asyncio.run(run(args.modes.split(","), args.requests, args.rounds))
    print(json.dumps(result))  # µs per request: cpu, flush, insert, hash


if __name__ == "__main__":
    main()
