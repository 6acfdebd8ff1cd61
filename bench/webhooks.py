"""The webhook relay's figure (issue 12, item 4): 10 000 queued deliveries to a local
receiver, drained by 2 worker processes on PostgreSQL; then a receiver down for the whole
run, which must lose nothing.

    .venv/bin/python -m bench.webhooks [--events 10000] [--workers 2] [--down-seconds 30]

It creates its own database (``interventions_bench_webhooks_<random>``, dropped at the end),
migrates it, and for each run creates an organisation with one endpoint subscribed to
``intervention.created`` and appends the events to its journal (one transaction per 1 000
entries: the journal is the outbox, so these are the queued deliveries). The receiver is a
raw ASGI app under uvicorn in a process of its own that checks every signature with
``standardwebhooks``; the workers are ``interventions worker`` processes (the same relay the
service runs). Timed: from enabling the endpoint, once both workers are up, to the last
delivery recorded as delivered in the database (the fan-out included).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.config import ADMIN_URL
from interventions.db import Database, create_database
from interventions.integrations.webhooks.service import new_secret
from interventions.migrate import upgrade
from interventions.register import journal
from interventions.register.journal import Entry, Subject, system_actor

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CHUNK = 1000


# --- the receiver (run in its own process: ``python -m bench.webhooks receive``) -------------


def receiver_app(secret: str) -> Any:
    from standardwebhooks import Webhook

    hook = Webhook(secret)
    seen: dict[str, int] = {}
    invalid = 0

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal invalid
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "GET":
            stats = {"requests": sum(seen.values()), "unique": len(seen), "invalid": invalid}
            answer = json.dumps(stats).encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": answer})
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            hook.verify(body, headers)
        except Exception:
            invalid += 1
        webhook_id = headers.get("webhook-id", "")
        seen[webhook_id] = seen.get(webhook_id, 0) + 1
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


def receive(port: int, secret: str) -> None:
    import uvicorn

    uvicorn.run(receiver_app(secret), host="127.0.0.1", port=port, log_level="warning")


def start_receiver(port: int, secret: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [PYTHON, "-m", "bench.webhooks", "receive", "--port", str(port), "--secret", secret],
        cwd=ROOT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the receiver did not start")


def receiver_stats(port: int) -> dict[str, int]:
    stats: dict[str, int] = httpx.get(f"http://127.0.0.1:{port}/", timeout=5).json()
    return stats


# --- the database ------------------------------------------------------------------------------


async def queue(db: Database, url: str, events: int) -> tuple[int, int, str]:
    """A new organisation, an endpoint at ``url`` (disabled until the workers are ready), and
    ``events`` journal entries: (organisation, endpoint, secret)."""
    secret = new_secret()
    conn = await asyncpg.connect(db.engine.url.render_as_string(False).replace("+asyncpg", ""))
    try:
        org = await conn.fetchval(
            "INSERT INTO organizations (name, created_at) VALUES ($1, now()) RETURNING id",
            f"bench {uuid.uuid4().hex[:6]}",
        )
        endpoint = await conn.fetchval(
            "INSERT INTO webhook_endpoints (organization_id, url, event_types, secret, enabled,"
            " journal_cursor, created_at, updated_at) VALUES ($1, $2, $3, $4, false, 0, now(),"
            " now()) RETURNING id",
            org,
            url,
            json.dumps(["intervention.created"]),
            secret,
        )
    finally:
        await conn.close()
    actor = system_actor("bench")
    for start in range(0, events, CHUNK):
        async with db.transaction() as executor:
            await journal.append(
                executor,
                org,
                [
                    Entry(
                        "create",
                        Subject.INTERVENTION,
                        n,
                        {"status": {"from": None, "to": 2}},
                        actor,
                    )
                    for n in range(start, min(start + CHUNK, events))
                ],
            )
    return org, endpoint, secret


async def counts(url: str, endpoint: int) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT status, count(*) AS n, min(attempts) AS lo, max(attempts) AS hi"
            " FROM webhook_deliveries WHERE endpoint_id = $1 GROUP BY status",
            endpoint,
        )
        cursor = await conn.fetchval(
            "SELECT journal_cursor FROM webhook_endpoints WHERE id = $1", endpoint
        )
    finally:
        await conn.close()
    return {
        "cursor": cursor,
        **{r["status"]: {"n": r["n"], "attempts": [r["lo"], r["hi"]]} for r in rows},
    }


async def enable(url: str, endpoint: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("UPDATE webhook_endpoints SET enabled = true WHERE id = $1", endpoint)
    finally:
        await conn.close()


def wait_ready(workers: list[subprocess.Popen[str]]) -> None:
    """Until each worker has logged that its webhook relay started (their log is drained to
    ours by a thread each, so that a full pipe never blocks them)."""
    ready = [threading.Event() for _ in workers]

    def follow(worker: subprocess.Popen[str], event: threading.Event) -> None:
        assert worker.stderr is not None
        for line in worker.stderr:
            if "webhook relay" in line and "started" in line:
                event.set()
            if " INFO " not in line:
                sys.stderr.write(line)

    for worker, event in zip(workers, ready, strict=True):
        threading.Thread(target=follow, args=(worker, event), daemon=True).start()
    for event in ready:
        if not event.wait(120):
            raise RuntimeError("a worker did not start")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def start_workers(url: str, n: int, tmp: Path, **env: str) -> list[subprocess.Popen[str]]:
    environment = {
        **os.environ,
        "INTERVENTIONS_DATABASE_URL": url,
        "INTERVENTIONS_SECRET_KEY": "bench-" + "x" * 32,
        "INTERVENTIONS_OUTBOX_DIR": str(tmp / "outbox"),
        "INTERVENTIONS_WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
        "INTERVENTIONS_PLANNER_INTERVAL_SECONDS": "3600",
        **env,
    }
    interventions = str(Path(PYTHON).parent / "interventions")
    return [subprocess.Popen([interventions, "worker"], env=environment, cwd=tmp) for _ in range(n)]


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()


async def drain(url: str, endpoint: int, events: int, seconds: float) -> float | None:
    """Seconds until every delivery of the endpoint is delivered, or None past ``seconds``."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        found = await counts(url, endpoint)
        if found.get("delivered", {}).get("n") == events:
            return time.monotonic() - started
        await asyncio.sleep(0.25)
    return None


async def main(args: argparse.Namespace) -> None:
    name = f"interventions_bench_webhooks_{uuid.uuid4().hex[:8]}"
    base, _, _ = ADMIN_URL.rpartition("/")
    url = f"{base}/{name}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    tmp = Path(f"/tmp/{name}")
    await asyncio.to_thread(tmp.mkdir, parents=True, exist_ok=True)
    receiver: subprocess.Popen[bytes] | None = None
    try:
        await asyncio.to_thread(upgrade, url)
        db = create_database(url)
        port = args.port

        # 1. A receiver that answers: time to drain.
        _org, endpoint, secret = await queue(db, f"http://127.0.0.1:{port}/hooks", args.events)
        receiver = start_receiver(port, secret)
        workers = start_workers(url, args.workers, tmp)
        cpu = children_cpu()
        try:
            await enable(url, endpoint)  # the clock starts: 10 000 deliveries are queued
            took = await drain(url, endpoint, args.events, args.timeout)
        finally:
            stop_workers(workers)
        cpu = children_cpu() - cpu
        stats = receiver_stats(port)
        print(
            json.dumps(
                {
                    "run": "receiver up",
                    "events": args.events,
                    "workers": args.workers,
                    "seconds": None if took is None else round(took, 1),
                    "per_second": None if not took else round(args.events / took),
                    "workers_cpu_seconds": round(cpu, 1),
                    "load_average": os.getloadavg()[0],
                    "deliveries": await counts(url, endpoint),
                    "receiver": stats,
                }
            ),
            flush=True,
        )
        receiver.terminate()
        receiver.wait()
        receiver = None

        # 2. A receiver down for the whole run: everything stays, pending, with its attempts.
        down_port = args.port + 1
        _org, endpoint, secret = await queue(db, f"http://127.0.0.1:{down_port}/hooks", args.events)
        workers = start_workers(url, args.workers, tmp)
        try:
            await enable(url, endpoint)
            await asyncio.sleep(args.down_seconds)
        finally:
            stop_workers(workers)
        down = await counts(url, endpoint)
        print(
            json.dumps({"run": "receiver down", "seconds": args.down_seconds, "deliveries": down})
        )
        # … then back: every message once, at the first retry made due now.
        receiver = start_receiver(down_port, secret)
        conn = await asyncpg.connect(url)
        await conn.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = now() WHERE endpoint_id = $1",
            endpoint,
        )
        await conn.close()
        workers = start_workers(url, args.workers, tmp)
        try:
            took = await drain(url, endpoint, args.events, args.timeout)
        finally:
            stop_workers(workers)
        print(
            json.dumps(
                {
                    "run": "receiver back",
                    "seconds": None if took is None else round(took, 1),
                    "deliveries": await counts(url, endpoint),
                    "receiver": receiver_stats(down_port),
                }
            ),
            flush=True,
        )
        await db.dispose()
    finally:
        if receiver is not None:
            receiver.terminate()
            receiver.wait()
        admin = await asyncpg.connect(ADMIN_URL)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "receive":
        parser = argparse.ArgumentParser()
        parser.add_argument("receive")
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--secret", required=True)
        options = parser.parse_args()
        receive(options.port, options.secret)
    else:
        parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
        parser.add_argument("--events", type=int, default=10_000)
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument("--port", type=int, default=18_765)
        parser.add_argument("--down-seconds", type=float, default=30)
        parser.add_argument("--timeout", type=float, default=300)
        asyncio.run(main(parser.parse_args()))
