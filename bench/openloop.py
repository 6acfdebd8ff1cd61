"""Open-loop latency (issue 10): requests sent at a constant rate whatever the answers.

wrk is closed-loop: each of its connections waits for an answer before sending again, so at
32 connections a slow server is simply sent less, and the latencies it reports are about
32/throughput. Here the n-th request is due at ``start + n / rate``; it goes out on an idle
keep-alive connection (a new one is opened when none is idle, up to ``max_connections``), and
its latency runs from when it was *due* to when its answer is complete: time spent waiting for
a connection counts, so a server that falls behind shows it (no coordinated omission).

The requests are the scenario's own (``bodies.build``, the same as wrk's Lua), each with its
organisation's session. The client is plain asyncio streams (uvloop when installed) with
pre-built request bytes: a few µs of CPU per request, on the same two cores as the server —
as wrk is.

    .venv/bin/python -m bench.openloop --url http://127.0.0.1:8000 --scenario get --rate 600
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench import bodies
from bench.pools import Pools, Session


def request_bytes(host: str, method: str, path: str, session: Session, body: bytes | None) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {host}",
        f"Authorization: Bearer {session.access}",
        f"x-session-token: {session.session}",
    ]
    if body is not None:
        lines += ["content-type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def build_requests(
    pools: Pools, sessions: Sequence[Session], scenario: str, count: int, host: str
) -> list[bytes]:
    """``count`` requests of the scenario, cycling over its pool (consumable pools — curative,
    verify — are used at most once: fewer requests if the pool is smaller)."""
    items = pools.items[scenario]
    if scenario in ("curative", "verify"):
        count = min(count, len(items))
    out = []
    for n in range(count):
        item = items[n % len(items)]
        method, path, body = bodies.build(scenario, item, n)
        out.append(request_bytes(host, method, path, sessions[item["s"] - 1], bodies.encode(body)))
    return out


@dataclass
class Result:
    sent: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    socket_errors: int = 0
    connections_opened: int = 0
    late_starts: int = 0  # requests that waited more than 1 ms past their due time to be sent

    def summary(self, rate: float, elapsed: float) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)

        def pct(q: float) -> float | None:
            if not ordered:
                return None
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

        return {
            "rate_offered": rate,
            "rate_achieved": round(len(ordered) / elapsed, 1) if elapsed > 0 else 0.0,
            "requests": self.sent,
            "answered": len(ordered),
            "p50_ms": pct(0.50),
            "p90_ms": pct(0.90),
            "p99_ms": pct(0.99),
            "p999_ms": pct(0.999),
            "max_ms": round(ordered[-1], 2) if ordered else None,
            "status_codes": {str(k): v for k, v in sorted(self.statuses.items())},
            "socket_errors": self.socket_errors,
            "connections": self.connections_opened,
            "late_starts": self.late_starts,
        }


async def _read_answer(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 answer (Content-Length bodies: the service's and the floor's); its
    status."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def run(
    url: str,
    requests: Sequence[bytes],
    rate: float,
    *,
    max_connections: int = 512,
    answer_within: float = 10.0,
) -> dict[str, Any]:
    """Send ``requests`` at ``rate`` per second, open loop; latencies from their due times."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    result = Result()
    opened = 0
    connection_free = asyncio.Event()

    async def connection() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        nonlocal opened
        while True:
            if idle:
                return idle.pop()
            if opened < max_connections:
                opened += 1
                result.connections_opened += 1
                try:
                    return await asyncio.open_connection(host, port)
                except OSError:
                    opened -= 1
                    raise
            connection_free.clear()
            await connection_free.wait()

    async def one(raw: bytes, due: float) -> None:
        try:
            reader, writer = await connection()
        except OSError:
            result.socket_errors += 1
            return
        if time.perf_counter() - due > 0.001:
            result.late_starts += 1
        try:
            writer.write(raw)
            status = await asyncio.wait_for(_read_answer(reader), answer_within)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            nonlocal opened
            result.socket_errors += 1
            opened -= 1
            writer.close()
            connection_free.set()
            return
        result.latencies_ms.append((time.perf_counter() - due) * 1000)
        result.statuses[status] = result.statuses.get(status, 0) + 1
        idle.append((reader, writer))
        connection_free.set()

    tasks = []
    start = time.perf_counter() + 0.05
    for n, raw in enumerate(requests):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(raw, due)))
        result.sent += 1
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    for _, writer in idle:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return result.summary(rate, elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--scenario", default="get", choices=("get", "curative"))
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds")
    parser.add_argument("--data", required=True, help="pools as JSON (bench.harness writes it)")
    options = parser.parse_args()
    data = json.loads(Path(options.data).read_text(encoding="utf-8"))
    sessions = [Session(**s) for s in data["sessions"]]
    pools = Pools(sessions=sessions, items=data["items"])
    host = urlsplit(options.url).netloc
    requests = build_requests(
        pools, sessions, options.scenario, int(options.rate * options.duration), host
    )
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    print(json.dumps(asyncio.run(run(options.url, requests, options.rate))))


if __name__ == "__main__":
    main()
