"""Open-loop latency (issue 10): requests sent at a constant rate whatever the answers.

wrk is closed-loop: each of its connections waits for an answer before sending again, so at
32 connections a slow server is simply sent less, and the latencies it reports are about
32/throughput. Here the n-th request is due at ``start + n / rate``; it goes out on an idle
keep-alive connection (a new one is opened when none is idle, up to ``max_connections``), and
its latency runs from when it was *due* to when its answer is complete: time spent waiting for
a connection counts, so a server that falls behind shows it (no coordinated omission).

The requests are the scenario's own (``bodies.build``, the same as wrk's Lua), each with its
organisation's session. The client is an asyncio protocol per connection (uvloop when
installed) with pre-built request bytes and no task per request: a few µs of CPU per
request, on the same two cores as the server — as wrk is.

    .venv/bin/python -m bench.openloop --url http://127.0.0.1:8000 --scenario get --rate 600
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
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
    connect_errors: int = 0  # connections that could not be opened (counted in socket_errors)
    late_starts: int = 0  # requests that waited more than 1 ms past their due time to be sent

    def summary(self, rate: float, elapsed: float, cpu: float = 0.0) -> dict[str, Any]:
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
            "connect_errors": self.connect_errors,
            "late_starts": self.late_starts,
            # The client's own CPU while sending and reading, per request sent.
            "client_cpu_us": round(cpu / max(self.sent, 1) * 1e6, 1),
        }


class Connection(asyncio.Protocol):
    """One keep-alive connection, one request in flight at a time; its answer is parsed as
    it arrives (Content-Length bodies: the service's and the floor's), and the latency taken
    in the callback that completes it."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.due = 0.0  # of the request in flight; 0.0 when idle
        self.sent_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def send(self, raw: bytes, due: float, now: float) -> None:
        assert self.transport is not None
        self.due, self.sent_at = due, now
        self.transport.write(raw)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        head_end = buffer.find(b"\r\n\r\n")
        if head_end < 0 or not self.due:
            return
        length = 0
        for line in bytes(buffer[:head_end]).split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        end = head_end + 4 + length
        if len(buffer) < end:
            return
        status = int(buffer[9:12])
        del buffer[:end]
        due, self.due = self.due, 0.0
        self.client.answered(self, status, due)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.lost(self)


class Client:
    """Requests sent at their due times on idle connections (a new one opened when none is
    idle, up to ``max_connections``; beyond, they queue for the next free one)."""

    def __init__(self, host: str, port: int, max_connections: int, answer_within: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.host, self.port = host, port
        self.max_connections = max_connections
        self.answer_within = answer_within
        self.result = Result()
        self.idle: list[Connection] = []
        self.busy: set[Connection] = set()
        self.opening = 0
        self.waiting: collections.deque[tuple[bytes, float]] = collections.deque()
        self.outstanding = 0
        self.done = asyncio.Event()
        self.openings: set[asyncio.Task[None]] = set()
        self.failure: BaseException | None = None  # a bug of the client's: the run fails

    def submit(self, raw: bytes, due: float) -> None:
        self.result.sent += 1
        self.outstanding += 1
        if self.idle:
            self._send(self.idle.pop(), raw, due)
            return
        self.waiting.append((raw, due))
        if self.opening + len(self.busy) < self.max_connections:
            self._start_opening()

    def _start_opening(self) -> None:
        self.opening += 1
        task = self.loop.create_task(self._open())
        self.openings.add(task)
        task.add_done_callback(self._opened)

    def _opened(self, task: asyncio.Task[None]) -> None:
        self.openings.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.failure = task.exception()
            self.done.set()

    def _send(self, conn: Connection, raw: bytes, due: float) -> None:
        now = time.perf_counter()
        if now - due > 0.001:
            self.result.late_starts += 1
        self.busy.add(conn)
        conn.send(raw, due, now)

    async def _open(self) -> None:
        try:
            _, conn = await self.loop.create_connection(
                lambda: Connection(self), self.host, self.port
            )
        except OSError:
            self.opening -= 1
            self.result.connect_errors += 1
            if self.waiting:
                self.waiting.popleft()
                self._finish_one(error=True)
            return
        self.opening -= 1
        self.result.connections_opened += 1
        self._free(conn)

    def _free(self, conn: Connection) -> None:
        if self.waiting:
            raw, due = self.waiting.popleft()
            self._send(conn, raw, due)
        else:
            self.idle.append(conn)

    def answered(self, conn: Connection, status: int, due: float) -> None:
        result = self.result
        result.latencies_ms.append((time.perf_counter() - due) * 1000)
        result.statuses[status] = result.statuses.get(status, 0) + 1
        self.busy.discard(conn)
        self._finish_one(error=False)
        self._free(conn)

    def lost(self, conn: Connection) -> None:
        if conn in self.idle:
            self.idle.remove(conn)
        if conn in self.busy:
            self.busy.discard(conn)
            if conn.due:
                conn.due = 0.0
                self._finish_one(error=True)
            if self.waiting:  # what queued for a connection gets a new one
                self._start_opening()

    def _finish_one(self, *, error: bool) -> None:
        if error:
            self.result.socket_errors += 1
        self.outstanding -= 1
        if self.outstanding == 0:
            self.done.set()

    def expire(self) -> None:
        """Close the connections whose answer is later than ``answer_within``: an error each."""
        now = time.perf_counter()
        for conn in list(self.busy):
            if conn.due and now - conn.sent_at > self.answer_within and conn.transport:
                conn.transport.close()  # connection_lost counts it

    def close(self) -> None:
        for conn in [*self.idle, *self.busy]:
            if conn.transport is not None:
                conn.transport.close()


async def run(
    url: str,
    requests: Sequence[bytes],
    rate: float,
    *,
    max_connections: int = 512,
    answer_within: float = 10.0,
) -> dict[str, Any]:
    """Send ``requests`` at ``rate`` per second, open loop; latencies from their due times.

    One protocol object per connection and no task per request: the client's own CPU per
    request is what decides how late it is on its schedule when it shares the cores with the
    server (bench/README.md, log step 38)."""
    parts = urlsplit(url)
    client = Client(parts.hostname or "127.0.0.1", parts.port or 80, max_connections, answer_within)
    cpu = time.process_time()
    start = time.perf_counter() + 0.05
    for n, raw in enumerate(requests):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        client.submit(raw, due)
        if n % 256 == 0:
            client.expire()
    while client.outstanding and client.failure is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(client.done.wait(), 1.0)
        client.expire()
    if client.failure is not None:
        raise client.failure
    elapsed = time.perf_counter() - start
    client.close()
    return client.result.summary(rate, elapsed, time.process_time() - cpu)


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
