"""What Idempotency-Key and If-Match cost a write (issue 12): CPU and statements, in-process.

``python -m bench.retries`` calls the service's ASGI application directly (as
``bench.budget``: no uvicorn, no sockets, one request at a time) on a register of its own,
``interventions_bench_retries`` (the small scale's sizes; generated at the schema the
generator knows, migration 0003, then migrated to head, which moves its history into the
journal), and compares variants of two writes, each request a success:

- ``curative`` (seed 000, a new intervention on an open anomaly): plain, and with a fresh
  ``Idempotency-Key`` per request;
- ``preventive`` (seed 002, a re-planning): plain, with ``If-Match`` (the intervention's
  current ``ETag``, kept from the previous answer), with a key, with both.

Per variant: CPU microseconds of this process per request (the service's CPU: PostgreSQL is
another process) and statements per request (``db.Executor.observers``; BEGIN/COMMIT apart).
Rounds interleave the variants in a rotating order, so the host's drifting speed moves them
together; figures are medians over the rounds. Nothing is restored: curative requests use
each open anomaly once, re-plannings repeat. Writes ``bench/results/retries-small.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import statistics
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
from starlette.types import Message, Scope

from bench import bodies, config, generate, harness, measure, pools
from bench.budget import auth_headers
from bench.config import Scale
from bench.measure import TX_STATEMENT

SCALE = Scale("retries", 10, 200, 15_000, 10_000, load_organizations=10)
# The schema bench/generate.py fills: the journal (0004) replaced the history table it writes.
GENERATED_AT = "20261201_0003"

VARIANTS = {
    "curative": ("plain", "Idempotency-Key"),
    "preventive": ("plain", "If-Match", "Idempotency-Key", "Idempotency-Key + If-Match"),
}


async def ensure_register() -> None:
    from interventions.migrate import upgrade

    if not await generate.is_generated(SCALE):
        harness.console.print("[bold]Generating interventions_bench_retries[/bold]")
        await generate.generate(SCALE, revision=GENERATED_AT)
    upgrade(config.database_url(SCALE))


async def call(
    app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes | None
) -> tuple[int, dict[bytes, bytes]]:
    """One request into the application; its status and headers."""
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
    started: dict[str, Any] = {}
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body or b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            started.update(message)

    await app(scope, receive, send)
    return started["status"], dict(started.get("headers", []))


class Run:
    def __init__(self, app: Any, pool: pools.Pools, etags: dict[int, bytes]) -> None:
        self.app = app
        self.pool = pool
        self.etags = etags
        self.curatives: Iterator[dict[str, Any]] = iter(pool.items["curative"])
        self.keys = itertools.count(1)
        self.statements = 0
        self.transactions = 0

    def observe(self, sql: str) -> None:
        if TX_STATEMENT.match(sql):
            self.transactions += 1
        else:
            self.statements += 1

    async def variant(self, scenario: str, variant: str, calls: int) -> dict[str, float]:
        """CPU µs and statements per request over ``calls`` requests (a tenth more first,
        uncounted)."""
        warm = max(1, calls // 10)
        began = 0.0
        for index in range(warm + calls):
            if index == warm:
                self.statements = self.transactions = 0
                began = time.process_time()
            if scenario == "curative":
                item, n = next(self.curatives), index + 1
            else:
                items = self.pool.items["preventive"]
                item, n = items[index % len(items)], next(self.keys)
            method, path, body = bodies.build(scenario, item, n)
            headers = auth_headers(self.pool.sessions[item["s"] - 1], body is not None)
            if "Idempotency-Key" in variant:
                headers.append((b"idempotency-key", f"bench-{next(self.keys)}".encode()))
            if "If-Match" in variant:
                headers.append((b"if-match", self.etags[item["id"]]))
            status, answered = await call(self.app, method, path, headers, bodies.encode(body))
            if not 200 <= status < 300:
                raise RuntimeError(f"{variant} {method} {path} answered {status}")
            if scenario == "preventive":
                self.etags[item["id"]] = answered[b"etag"]
        cpu = (time.process_time() - began) / calls * 1e6
        return {
            "cpu_us": cpu,
            "statements": self.statements / calls,
            "transactions": self.transactions / calls,
        }


async def measure_all(calls: int, rounds: int) -> dict[str, dict[str, list[dict[str, float]]]]:
    from interventions.app import create_app
    from interventions.db import Executor

    await ensure_register()
    sessions = await measure.login_in_process(SCALE)
    conn = await asyncpg.connect(config.database_url(SCALE))
    try:
        pool = await pools.build(conn, sessions)
        ids = [item["id"] for item in pool.items["preventive"]]
        found = await conn.fetch(
            "SELECT id, version FROM interventions WHERE id = ANY($1::bigint[])", ids
        )
    finally:
        await conn.close()
    etags = {row["id"]: f'"{row["id"]}.{row["version"]}"'.encode() for row in found}
    app = create_app(measure.service_settings(SCALE))
    run = Run(app, pool, etags)
    Executor.observers.append(run.observe)
    out: dict[str, dict[str, list[dict[str, float]]]] = {
        scenario: {variant: [] for variant in variants} for scenario, variants in VARIANTS.items()
    }
    try:
        for round_ in range(rounds):
            for scenario, variants in VARIANTS.items():
                shift = round_ % len(variants)
                for variant in variants[shift:] + variants[:shift]:
                    figures = await run.variant(scenario, variant, calls)
                    out[scenario][variant].append(figures)
    finally:
        Executor.observers.remove(run.observe)
        await app.state.db.dispose()
    return out


def render(found: dict[str, dict[str, list[dict[str, float]]]], calls: int, rounds: int) -> str:
    when = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    commit = harness.source()["commit"][:10]
    lines = [
        "# What Idempotency-Key and If-Match cost a write",
        "",
        f"Run {when}; service at commit `{commit}`. In-process (`python -m bench.retries`):"
        f" the service's CPU per request, median of {rounds} interleaved rounds of {calls}"
        " requests per variant; statements per request without BEGIN/COMMIT (those apart).",
        "",
        "| write | variant | CPU µs | vs plain | statements | BEGIN/COMMIT | rounds (µs) |",
        "|---|---|--:|--:|--:|--:|---|",
    ]
    for scenario, variants in found.items():
        plain = statistics.median(f["cpu_us"] for f in variants["plain"])
        base = statistics.median(f["statements"] for f in variants["plain"])
        for variant, figures in variants.items():
            cpu = statistics.median(f["cpu_us"] for f in figures)
            statements = statistics.median(f["statements"] for f in figures)
            tx = statistics.median(f["transactions"] for f in figures)
            each = " / ".join(f"{f['cpu_us']:.0f}" for f in figures)
            extra = f"{statements - base:+.2f}" if variant != "plain" else ""
            lines.append(
                f"| {scenario} | {variant} | {cpu:.0f} | {cpu / plain - 1:+.1%} |"
                f" {statements:.2f} {extra} | {tx:.2f} | {each} |"
            )
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="requests per variant and round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import uvloop

    found = uvloop.run(measure_all(args.calls, args.rounds))
    text = render(found, args.calls, args.rounds)
    path = config.RESULTS_DIR / "retries-small.md"
    path.write_text(text, encoding="utf-8")
    print(text)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
