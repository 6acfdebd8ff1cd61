"""The whole benchmark, one command: data, servers, load, floor, measurements, report.

``python -m bench.harness --scale small`` (``bench/run`` calls it after setting up the
environment). For each worker count it starts the service exactly as in production
(``interventions serve --no-migrate --workers N``), then the floor under the same uvicorn
settings, and drives both with wrk through the same Lua scripts and the same data. Each
scenario runs on a snapshot of the database that is restored afterwards, so that every run
sees the same register. Results go to ``bench/results/<scale>.json`` (and ``.md``, ``.png``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from rich.console import Console

from bench import bodies, config, generate, measure, pools, report, state
from bench.config import Scale

console = Console(stderr=True)
VENV_BIN = Path(sys.executable).parent
ABBA = (config.REFERENCE, config.PAIRED, config.PAIRED, config.REFERENCE)
OPEN_LOOP_SCENARIOS = ("get", "curative")  # issue 10: p99 at half the floor's maximum rate
EXHAUSTED_ROUNDS = 3  # runs of a scenario whose supply ran out, service and floor in turn
ROUNDS = 3  # pairs per scenario, service and floor in turn; the ratio is the median pair's
OPEN_LOOP_ROUNDS = 3  # service and floor in turn; the report takes the median p99


@dataclass
class Options:
    scale: Scale
    duration: int
    connections: int
    threads: int
    workers: list[int]
    scenarios: list[str]
    warmup: int
    port: int
    regenerate: bool
    skip_measure: bool
    quiet_budget: int
    small_reference: bool = True
    open_loop: bool = True
    rounds: int = ROUNDS


# Servers --------------------------------------------------------------------------------------


class Server:
    """A server process tree we started: started, watched, and stopped by its own pid."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = config.RAW_DIR / f"{name}.log"
        self.pid_file = config.RAW_DIR / "pids" / name

    @property
    def url(self) -> str:
        return f"http://{config.HOST}:{self.port}"

    def start(self) -> None:
        with contextlib.suppress(OSError), socket.create_connection((config.HOST, self.port), 1):
            # Something already answers there: we would measure it instead of our server.
            raise RuntimeError(f"port {self.port} is taken; choose another with --port")
        cwd = config.RAW_DIR / "cwd"  # the service writes nothing into the repository
        cwd.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv, env=self.env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self.pid_file.write_text(str(self.proc.pid))  # for bench/run's cleanup if we die
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start; see {self.log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer /health within 60 s")

    def processes(self) -> list[psutil.Process]:
        """The supervisor and its workers."""
        if self.proc is None:
            return []
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def worker_pids(self) -> set[int]:
        """The processes that serve requests: the workers under a supervisor (several
        workers), or the server process itself (one worker)."""
        processes = self.processes()
        if not processes:
            return set()
        children = {p.pid for p in processes[1:]}
        return children or {processes[0].pid}

    def stop(self) -> None:
        self.pid_file.unlink(missing_ok=True)
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        children = self.processes()[1:]
        self.proc.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown, workers included
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for child in children:  # only the workers this server started, by pid
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        self.proc = None


def service_server(scale: Scale, workers: int, port: int) -> Server:
    env = {
        **os.environ,
        "INTERVENTIONS_DATABASE_URL": config.database_url(scale),
        "INTERVENTIONS_SECRET_KEY": config.SECRET,
        # Long enough for a whole run with tokens obtained once (production default: 1 h).
        "INTERVENTIONS_ACCESS_TOKEN_TTL_SECONDS": str(12 * 3600),
        "INTERVENTIONS_STORAGE_DIR": str(config.RAW_DIR / "storage"),
        "INTERVENTIONS_OUTBOX_DIR": str(config.RAW_DIR / "outbox"),
    }
    listen = ["--host", config.HOST, "--port", str(port), "--workers", str(workers)]
    argv = [str(VENV_BIN / "interventions"), "serve", "--no-migrate", *listen]
    if os.environ.get("BENCH_SERVER") == "granian":
        # Issue 10's question, kept to be asked again: the service under granian instead of
        # uvicorn (BENCH_SERVER=granian python -m bench.quick …). Its single-threaded runtime,
        # the better of the two on two cores; the access log on, as uvicorn's.
        argv = [
            str(VENV_BIN / "granian"),
            "--interface",
            "asgi",
            *listen,
            "--loop",
            "uvloop",
            "--access-log",
            "--runtime-mode",
            "st",
            "--runtime-threads",
            "1",
            "--runtime-blocking-threads",
            "1",
            "interventions.asgi:app",
        ]
    return Server(f"service-w{workers}", argv, env, port)


def floor_server(scale: Scale, workers: int, port: int) -> Server:
    env = {
        **os.environ,
        "BENCH_DATABASE_URL": config.database_url(scale),
        "BENCH_SECRET": config.SECRET,
        "PYTHONPATH": str(config.REPO_DIR),
    }
    # The uvicorn settings of `interventions serve` (cli.py): proxy headers, info log level
    # (access log on), uvloop and httptools picked automatically.
    argv = [
        str(VENV_BIN / "python"),
        "-m",
        "uvicorn",
        "bench.floor:app",
        "--host",
        config.HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--proxy-headers",
        "--log-level",
        "info",
    ]
    return Server(f"floor-w{workers}", argv, env, port)


# Sampling: memory of the server, CPU of everyone ----------------------------------------------


class Sampler(threading.Thread):
    """Peak RSS of the server tree, and CPU used by the server, PostgreSQL, wrk and others."""

    INTERVAL = 0.25

    def __init__(self, server: Server, database: str) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.database = database
        self.peak_rss = 0
        # Peak RSS of each process of the server (uvicorn's supervisor and its workers).
        self.peak_rss_by_pid: dict[int, int] = {}
        self.cpu: dict[str, float] = {"server": 0.0, "postgres": 0.0, "wrk": 0.0, "other": 0.0}
        self._seen: dict[int, float] = {}
        self._halt = threading.Event()
        self._began = time.monotonic()
        self._own = os.getpid()

    def _kind(self, proc: psutil.Process, server_pids: set[int]) -> str | None:
        if proc.pid in server_pids:
            return "server"
        if proc.pid == self._own:
            return None  # the harness itself (this thread) is not load
        name = proc.info["name"] or ""
        if name == "wrk":
            return "wrk"
        if name.startswith("postgres"):
            cmdline = " ".join(proc.info["cmdline"] or [])
            client = "(" in cmdline or "[local]" in cmdline
            # Client backends of other databases are someone else's load; the background
            # processes (WAL writer, checkpointer…) work for whoever writes, mostly us.
            return "other" if client and self.database not in cmdline else "postgres"
        return "other"

    def sample(self) -> None:
        server = self.server.processes()
        pids = {p.pid for p in server}
        rss = 0
        for proc in server:
            with contextlib.suppress(psutil.Error):
                one = proc.memory_info().rss
                rss += one
                self.peak_rss_by_pid[proc.pid] = max(self.peak_rss_by_pid.get(proc.pid, 0), one)
        self.peak_rss = max(self.peak_rss, rss)
        for proc in psutil.process_iter(["name", "cmdline", "cpu_times"]):
            kind = self._kind(proc, pids)
            times = proc.info["cpu_times"]
            if kind is None or times is None:
                continue
            used = times.user + times.system
            before = self._seen.get(proc.pid)
            self._seen[proc.pid] = used
            if before is not None:
                self.cpu[kind] += used - before

    def run(self) -> None:
        self.sample()  # the baseline of every process's CPU time
        self._began = time.monotonic()
        while not self._halt.wait(self.INTERVAL):
            self.sample()

    def finish(self) -> dict[str, Any]:
        self._halt.set()
        self.join()
        elapsed = max(1e-6, time.monotonic() - self._began)
        workers = self.server.worker_pids()
        per_worker = [v for pid, v in self.peak_rss_by_pid.items() if pid in workers]
        return {
            "peak_rss_mib": round(self.peak_rss / 2**20, 1),
            # The largest of the worker processes (the process itself when it has none).
            "peak_worker_rss_mib": round(max(per_worker, default=self.peak_rss) / 2**20, 1),
            # Cores used on average (1.0 = one core busy for the whole run).
            "cpu_cores": {k: round(v / elapsed, 2) for k, v in self.cpu.items()},
        }


def foreign_cores(seconds: float = 1.0) -> float:
    """Cores used by processes outside the benchmark (client backends of other databases and
    everything that is not PostgreSQL), measured over ``seconds``."""
    own = {os.getpid(), *(p.pid for p in psutil.Process().children(recursive=True))}

    def used() -> dict[int, float]:
        out = {}
        for proc in psutil.process_iter(["name", "cmdline", "cpu_times"]):
            name = proc.info["name"] or ""
            cmdline = " ".join(proc.info["cmdline"] or [])
            if proc.pid in own or (
                name.startswith("postgres") and "interventions_bench" in cmdline
            ):
                continue
            if name.startswith("postgres") and "(" not in cmdline:
                continue  # PostgreSQL's own background processes
            times = proc.info["cpu_times"]
            if times is not None:
                out[proc.pid] = times.user + times.system
        return out

    before = used()
    time.sleep(seconds)
    after = used()
    return sum(after[p] - before[p] for p in after if p in before) / seconds


class Quiet:
    """Waits, within a budget, for other processes to leave the CPUs to the benchmark.

    The machine may be shared (another session's test suite, say); a run measured while
    something else takes a core is pessimistic. Each run records what the others used anyway.
    """

    THRESHOLD = 0.15  # cores

    def __init__(self, budget_s: float) -> None:
        self.budget = budget_s

    def wait(self) -> None:
        waited = 0.0
        while self.budget > 0:
            load = foreign_cores()
            if load < self.THRESHOLD:
                return
            if waited == 0:
                console.print(f"  (other processes use {load:.2f} cores: waiting for quiet)")
            time.sleep(4)
            waited += 5
            self.budget -= 5


# wrk ------------------------------------------------------------------------------------------


def merge_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Runs of one scenario on one server as one result: the throughput over all their
    windows (answers summed, windows summed), the latencies, CPU and samples of the run of
    median throughput, errors summed, the largest memory; each run in ``rounds``."""
    if len(runs) == 1:
        return runs[0]
    by_rate = sorted(runs, key=lambda r: r["rps"])
    out = dict(by_rate[(len(by_rate) - 1) // 2])
    ok = sum(r["ok"] for r in runs)
    window = sum(r["window_s"] for r in runs)
    out.update(
        ok=ok,
        window_s=window,
        rps=ok / window if window else 0.0,
        errors=sum(r["errors"] for r in runs),
        socket_errors=sum(r["socket_errors"] for r in runs),
        exhausted=any(r["exhausted"] for r in runs),
        peak_rss_mib=max(r["peak_rss_mib"] for r in runs),
        peak_worker_rss_mib=max(r["peak_worker_rss_mib"] for r in runs),
        rounds=[{k: r[k] for k in ("rps", "ok", "window_s", "p50_ms", "p99_ms")} for r in runs],
    )
    return out


def run_wrk(
    url: str, scenario: str, duration: int, options: Options, data: Path, label: str
) -> dict[str, Any]:
    """One wrk run; returns the Lua script's result line (see lua/common.lua)."""
    argv = [
        "wrk",
        f"-t{options.threads}",
        f"-c{options.connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",  # slow answers count in the latencies instead of vanishing as timeouts
        "-s",
        str(config.LUA_DIR / f"{scenario}.lua"),
        url,
    ]
    env = {
        **os.environ,
        "BENCH_DATA": str(data),
        "BENCH_THREADS": str(options.threads),
        "BENCH_LUA_DIR": str(config.LUA_DIR),
    }
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=duration + 120, check=False
    )
    (config.RAW_DIR / f"wrk-{label}.txt").write_text(done.stdout + done.stderr, encoding="utf-8")
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
            return result
    raise RuntimeError(f"wrk gave no result for {label}:\n{done.stdout}\n{done.stderr}")


# The run --------------------------------------------------------------------------------------


def login(url: str, scale: Scale) -> list[pools.Session]:
    """Log the load's accounts in through the API (one session per organisation)."""
    sessions = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for org, user, email in pools.load_accounts(scale):
            response = client.post(
                "/auth/v1/rs/login/credentials",
                json={"email": email, "password": config.PASSWORD},
            )
            if response.status_code != 201:
                raise RuntimeError(
                    f"login of {email} failed: {response.status_code} {response.text}"
                )
            data = response.json()["data"]
            sessions.append(
                pools.Session(org, user, user, data["accessToken"], data["sessionToken"])
            )
    return sessions


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def _connect(scale: Scale) -> asyncpg.Connection:
    return await asyncpg.connect(config.database_url(scale))


async def _busy(conn: asyncpg.Connection, database: str) -> int:
    """Backends of the bench database (other than ours) running a statement or a transaction."""
    value = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() "
        "AND (state <> 'idle' OR xact_start IS NOT NULL)",
        database,
    )
    return int(value or 0)


async def settle(conn: asyncpg.Connection, database: str) -> None:
    """Wait until the server has finished the requests wrk left in flight.

    wrk stops with up to one request per connection unanswered; the server still completes
    them. Restoring the snapshot before they commit would let them leak into the next run
    (an anomaly left in repair, an intervention already verified).
    """
    deadline = time.monotonic() + 60
    quiet = 0
    while quiet < 5 and time.monotonic() < deadline:  # one second without a transaction
        quiet = quiet + 1 if await _busy(conn, database) == 0 else 0
        await asyncio.sleep(0.2)


async def _sessions_opened(conn: asyncpg.Connection, database: str) -> int:
    value = await conn.fetchval(
        "SELECT sessions FROM pg_stat_database WHERE datname = $1", database
    )
    return int(value or 0)


class Bench:
    """Holds what a run shares: options, the pools, a connection for snapshots, results."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.scale = options.scale
        self.data_file = config.RAW_DIR / f"data-{self.scale.name}.lua"
        # The same pools and sessions as JSON, for the open-loop client (bench/openloop.py).
        self.json_file = config.RAW_DIR / f"data-{self.scale.name}.json"
        self.runs: list[dict[str, Any]] = []
        self.open_loop_runs: list[dict[str, Any]] = []
        self.loop = asyncio.new_event_loop()
        self.conn: asyncpg.Connection | None = None
        self.pools: pools.Pools | None = None
        self.quiet = Quiet(options.quiet_budget)
        # At large scale: the small register, its pools and snapshots (config.REFERENCE).
        self.reference: Bench | None = None

    def sync(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def prepare(self) -> list[pools.Session]:
        """The snapshot connection, the load's sessions (logged in through a service started
        for that) and the pools, written for wrk's Lua scripts."""
        config.RAW_DIR.mkdir(parents=True, exist_ok=True)
        self.conn = self.sync(_connect(self.scale))
        with running(service_server(self.scale, 1, self.options.port)) as server:
            sessions = login(server.url, self.scale)
        self.pools = self.sync(pools.build(self.conn, sessions))
        pools.write_lua(self.pools, self.data_file)
        self.json_file.write_text(
            json.dumps({"sessions": [asdict(s) for s in sessions], "items": self.pools.items}),
            encoding="utf-8",
        )
        return sessions

    def scenario(self, server: Server, target: str, workers: int, name: str) -> dict[str, Any]:
        assert self.conn is not None
        assert self.pools is not None
        label = f"{self.scale.name}-{target}-w{workers}-{name}"
        self.quiet.wait()
        marks = self.sync(state.snapshot(self.conn, self.pools))
        opened = self.sync(_sessions_opened(self.conn, self.scale.database))
        sampler = Sampler(server, self.scale.database)
        sampler.start()
        try:
            result = run_wrk(
                server.url, name, self.options.duration, self.options, self.data_file, label
            )
        finally:
            sampled = sampler.finish()
            self.settle()
            self.sync(state.restore(self.conn, marks))
        result.update(sampled)
        result["pg_sessions_opened"] = (
            self.sync(_sessions_opened(self.conn, self.scale.database)) - opened
        )
        result.update(target=target, workers=workers, scenario=name)
        errors = result["errors"] + result["socket_errors"]
        style = "bold red" if errors else "green"
        console.print(
            f"  {target:7} w{workers} {name:10} {result['rps']:8.1f} req/s  "
            f"p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:7.2f} ms  "
            f"errors {errors}{'  (pool exhausted: shorter window)' if result['exhausted'] else ''}"
            f"  rss {sampled['peak_rss_mib']} MiB",
            style=style,
        )
        if errors:
            console.print(
                f"    !! {result['status_codes']} {result.get('error_sample')}", style=style
            )
        return result

    def settle(self) -> None:
        assert self.conn is not None
        self.sync(settle(self.conn, self.scale.database))

    def warm(self, server: Server, workers: int) -> None:
        """A short mixed run: every endpoint's code, statements and connections warmed up."""
        assert self.conn is not None
        assert self.pools is not None
        if self.options.warmup <= 0:
            return
        marks = self.sync(state.snapshot(self.conn, self.pools))
        try:
            run_wrk(
                server.url,
                "mixed",
                self.options.warmup,
                self.options,
                self.data_file,
                f"{self.scale.name}-{server.name}-warmup",
            )
        finally:
            self.settle()
            self.sync(state.restore(self.conn, marks))

    def compare(self, service: Server, floor: Server, workers: int) -> None:
        """Each scenario on the service then at once on the floor, both servers up (the idle
        one costs nothing): the machine's speed drifts over minutes on shared hosts, and the
        ratio is only meaningful between runs made back to back.

        With a reference (large scale), a first pass runs each scenario on the service on the
        small register and on this one, for the p50 comparison, in the order small, large,
        large, small, for the same reason.
        The small service is stopped before the floor starts: three servers of two workers
        with 20 connections each would exceed PostgreSQL's default 100 connections.
        """
        reference = self.reference
        with running(service):
            self.warm(service, workers)
            if reference is not None:
                small = service_server(reference.scale, workers, self.options.port + 2)
                with running(small):
                    reference.warm(small, workers)
                    for name in self.options.scenarios:
                        # small, large, large, small: a drift of the host's speed during the
                        # four runs weighs the same on both sides (each p50 is their mean).
                        for target in ABBA:
                            if target == config.REFERENCE:
                                self.runs.append(reference.scenario(small, target, workers, name))
                            else:
                                self.runs.append(self.scenario(service, target, workers, name))
            with running(floor):
                self.warm(floor, workers)
                for name in self.options.scenarios:
                    self.pair(service, floor, workers, name)
                if self.options.open_loop and self.reference is None:
                    self.open_loops(service, floor, workers)

    def pair(self, service: Server, floor: Server, workers: int, name: str) -> None:
        """The scenario on the service and at once on the floor, ``rounds`` times, the order
        alternating (service first, then floor first...). Each pair gives a ratio; the
        service's run records every pair's (``ratios``) and their median (``ratio``), which
        the target reads: on this shared host one run's speed moved by a quarter within a
        minute, and a single pair's ratio flipped verdicts between runs of the same code
        (bench/README, steps 38-41).

        When either's supply ran out before the end (verify's 1 838 executed checks last
        2-3.5 s at these rates), at least ``EXHAUSTED_ROUNDS`` pairs. Each target's runs are
        read as one (``merge_runs``): throughput over all their windows, a window of two
        seconds alone being mostly its start."""
        rounds: list[dict[str, dict[str, Any]]] = []
        both = ((service, "service"), (floor, "floor"))
        for turn in range(max(self.options.rounds, EXHAUSTED_ROUNDS)):
            exhausted = any(run["exhausted"] for pair in rounds for run in pair.values())
            if turn >= self.options.rounds and not exhausted:
                break
            pair = {
                target: self.scenario(server, target, workers, name)
                for server, target in (both if turn % 2 == 0 else both[::-1])
            }
            rounds.append(pair)
        ratios = [
            p["service"]["rps"] / p["floor"]["rps"] if p["floor"]["rps"] > 0 else 0.0
            for p in rounds
        ]
        merged = {
            target: merge_runs([p[target] for p in rounds]) for target in ("service", "floor")
        }
        merged["service"].update(
            ratio=statistics.median(ratios), ratios=[round(r, 3) for r in ratios]
        )
        if len(rounds) > 1:
            console.print(
                f"  ratio w{workers} {name:10} {statistics.median(ratios):.2f} "
                f"(pairs {' / '.join(f'{r:.2f}' for r in ratios)})"
            )
        self.runs += [merged["service"], merged["floor"]]

    def open_loops(self, service: Server, floor: Server, workers: int) -> None:
        """Get and curative offered at half the rate the floor just sustained (closed loop),
        open loop, to the service and to the floor in turn (bench/openloop.py), for
        ``OPEN_LOOP_ROUNDS`` rounds: one run's p99 on this host moved between 12 and 28 ms
        for the same server within minutes, so the report takes the median round."""
        measured = {
            r["scenario"]: r["rps"]
            for r in self.runs
            if r["target"] == "floor" and r["workers"] == workers
        }
        for name in OPEN_LOOP_SCENARIOS:
            if name not in measured or measured[name] <= 0:
                continue
            rate = round(measured[name] / 2, 1)
            both = ((service, "service"), (floor, "floor"))
            for turn in range(OPEN_LOOP_ROUNDS):
                for server, target in both if turn % 2 == 0 else both[::-1]:
                    self.open_loop_runs.append(
                        self.open_loop(server, target, workers, name, rate, turn)
                    )

    def open_loop(
        self, server: Server, target: str, workers: int, name: str, rate: float, turn: int
    ) -> dict[str, Any]:
        assert self.conn is not None
        assert self.pools is not None
        self.quiet.wait()
        marks = self.sync(state.snapshot(self.conn, self.pools))
        try:
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.openloop",
                    "--url",
                    server.url,
                    "--scenario",
                    name,
                    "--rate",
                    str(rate),
                    "--duration",
                    str(self.options.duration),
                    "--data",
                    str(self.json_file),
                ],
                cwd=config.REPO_DIR,
                capture_output=True,
                text=True,
                timeout=self.options.duration + 120,
                check=False,
            )
        finally:
            self.settle()
            self.sync(state.restore(self.conn, marks))
        label = f"{self.scale.name}-{target}-w{workers}-{name}-open-loop-{turn + 1}"
        (config.RAW_DIR / f"{label}.txt").write_text(done.stdout + done.stderr, encoding="utf-8")
        if done.returncode != 0 or not done.stdout.strip():
            raise RuntimeError(f"the open-loop client failed for {label}:\n{done.stderr}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        result.update(target=target, workers=workers, scenario=name, round=turn + 1)
        console.print(
            f"  {target:7} w{workers} {name:10} open loop {turn + 1} at {rate:7.1f} req/s: "
            f"p50 {result['p50_ms']} ms  p99 {result['p99_ms']} ms  "
            f"answered {result['answered']}/{result['requests']}  "
            f"codes {result['status_codes']}  socket errors {result['socket_errors']}"
        )
        return result

    def prepare_reference(self) -> None:
        """The small register beside a large run: generated if missing, logged in, pooled."""
        small = config.SCALES["small"]
        self.reference = Bench(replace(self.options, scale=small, small_reference=False))
        self.reference.quiet = self.quiet  # one waiting budget for the whole run
        if not self.reference.sync(generate.is_generated(small)):
            console.print("[bold]Generating the small register (the reference)[/bold]")
            self.reference.sync(generate.generate(small))
        from interventions.migrate import upgrade

        upgrade(config.database_url(small))
        self.reference.prepare()

    def close(self) -> None:
        if self.conn is not None:
            self.sync(self.conn.close())
        self.loop.close()
        if self.reference is not None:
            self.reference.close()

    def target(self, server: Server, target: str, workers: int) -> None:
        with running(server):
            self.warm(server, workers)
            for name in self.options.scenarios:
                self.runs.append(self.scenario(server, target, workers, name))

    def run(self) -> dict[str, Any]:
        options, scale = self.options, self.scale
        config.RAW_DIR.mkdir(parents=True, exist_ok=True)
        began = time.time()
        generated: dict[str, Any] | None = None
        if options.regenerate or not self.sync(generate.is_generated(scale)):
            console.print(f"[bold]Generating the {scale.name} register[/bold]")
            generated = self.sync(generate.generate(scale))
        from interventions.migrate import upgrade

        upgrade(config.database_url(scale))  # no-op unless src/ gained a migration since
        try:
            sessions = self.prepare()
            if scale.name == "large" and options.small_reference:
                self.prepare_reference()
            assert self.pools is not None
            sizes = {name: len(items) for name, items in self.pools.items.items()}
            console.print(f"pools: {sizes}")
            statements: dict[str, Any] = {}
            if not options.skip_measure:
                console.print("[bold]SQL statements per request (in-process)[/bold]")
                statements = self.sync(measure.measure(scale, sessions))
            for workers in options.workers:
                console.print(f"[bold]{workers} worker(s)[/bold]")
                self.compare(
                    service_server(scale, workers, options.port),
                    floor_server(scale, workers, options.port + 1),
                    workers,
                )
            counts = self.sync(self._counts())
        finally:
            self.close()
        return {
            "scale": scale.name,
            "started_at": dt.datetime.fromtimestamp(began, dt.UTC).isoformat(timespec="seconds"),
            "elapsed_s": round(time.time() - began),
            "settings": {
                "duration_s": options.duration,
                "rounds": options.rounds,
                "connections": options.connections,
                "wrk_threads": options.threads,
                "workers": options.workers,
                "warmup_s": options.warmup,
                "load_organizations": scale.load_organizations,
                "small_reference": self.reference is not None,
            },
            "machine": machine(),
            "source": source(),
            "database": {"rows": counts, "generation": generated},
            "pools": sizes,
            "statements": statements,
            "runs": self.runs,
            "open_loop": self.open_loop_runs,
        }

    async def _counts(self) -> dict[str, int]:
        assert self.conn is not None
        rows = await self.conn.fetch(
            "SELECT relname, n_live_tup FROM pg_stat_user_tables "
            "WHERE schemaname = 'public' ORDER BY relname"
        )
        return {r["relname"]: int(r["n_live_tup"]) for r in rows}


def source() -> dict[str, Any]:
    """Which service was measured: the commit, and whether src/ had uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=config.REPO_DIR, capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "src_modified": bool(git("status", "--short", "src")),
    }


def machine() -> dict[str, Any]:
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "wrk": (wrk.stdout or wrk.stderr).splitlines()[0] if (wrk.stdout or wrk.stderr) else "",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def parse(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description="Benchmark the service against its floor.")
    parser.add_argument("--scale", choices=sorted(config.SCALES), default="small")
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario run")
    parser.add_argument(
        "--rounds",
        type=int,
        default=ROUNDS,
        help="service/floor pairs per scenario, in alternating order; the median ratio counts",
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument(
        "--scenarios", default=",".join(bodies.SCENARIOS), help="comma-separated scenarios"
    )
    parser.add_argument("--warmup", type=int, default=3, help="seconds of mixed load per start")
    parser.add_argument(
        "--port", type=int, default=8731, help="service port; the floor +1, the reference +2"
    )
    parser.add_argument("--regenerate", action="store_true", help="regenerate the data first")
    parser.add_argument("--skip-measure", action="store_true", help="no in-process counting")
    parser.add_argument(
        "--quiet-budget",
        type=int,
        default=300,
        help="seconds, in all, to wait for other processes to leave the CPUs before runs",
    )
    parser.add_argument(
        "--no-open-loop",
        dest="open_loop",
        action="store_false",
        help="skip the open-loop latency runs (get and curative at half the floor's rate)",
    )
    parser.add_argument(
        "--no-small-reference",
        dest="small_reference",
        action="store_false",
        help="at large scale, compare p50 with results/small.json instead of running the "
        "service on the small register beside each scenario",
    )
    args = parser.parse_args(argv)
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(scenarios) - set(bodies.SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")
    return Options(
        scale=config.SCALES[args.scale],
        duration=args.duration,
        connections=args.connections,
        threads=args.threads,
        workers=[int(w) for w in args.workers.split(",") if w],
        scenarios=scenarios,
        warmup=args.warmup,
        port=args.port,
        regenerate=args.regenerate,
        skip_measure=args.skip_measure,
        quiet_budget=args.quiet_budget,
        small_reference=args.small_reference,
        open_loop=args.open_loop,
        rounds=args.rounds,
    )


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # so that every server is stopped on the way


def main(argv: Sequence[str] | None = None) -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    options = parse(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk); bench/run installs it")
    results = Bench(options).run()
    path = report.write(results)
    console.print(f"[bold]Report:[/bold] {path}")


if __name__ == "__main__":
    main()
