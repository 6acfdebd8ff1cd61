"""Where the service's time goes under load: py-spy on the worker while wrk drives it.

``python -m bench.profile --scale small --scenarios get,curative,mixed`` starts the service
(one worker, as ``bench/run``), logs in, and for each scenario samples the worker with
``py-spy record`` while wrk runs, on a snapshot restored afterwards. The collapsed stacks go to
``bench/results/raw/profile-<scale>-<scenario>.txt`` (open them with speedscope or
flamegraph.pl); a summary by package and by layer goes to ``bench/results/profile-<scale>.md``.
py-spy comes from PyPI (``.venv/bin/pip install py-spy``) and needs ptrace rights. It
pauses the worker for each sample: ``--nonblocking`` cost less but read stacks while they
changed, and gave asyncpg's frames a third more samples than the callers they hung under.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg

from bench import config, harness, pools, state

# Inclusive shares: a stack counts once for each marker it contains.
LAYERS = (
    ("authentication dependency (tokens + session query)", "current_caller (interventions/"),
    # The lean route handlers (interventions/handlers.py) in place of FastAPI's own.
    ("endpoint function (service code + its SQL)", "lean_app.<locals>.answer (interventions/"),
    ("dependency solving (body validation, auth)", "_Solving.solve (interventions/"),
    ("response serialisation", "dump_json (pydantic/"),
    ("the executor (db.Executor), asyncpg under it", "Executor._run (interventions/"),
    ("SQLAlchemy, everything under it (the pool)", "(sqlalchemy/"),
    ("asyncpg, everything under it", "(asyncpg/"),
    ("pydantic (Python side)", "(pydantic/"),
    ("the journal's append", "append (interventions/register/journal"),
    ("commit (journal and COMMIT)", "Executor.end (interventions/"),
    ("new database connections (connect + dialect setup)", "connect (asyncpg/connect_utils"),
)
PACKAGES = (
    "sqlalchemy",
    "asyncpg",
    "fastapi",
    "starlette",
    "pydantic",
    "uvicorn",
    "interventions",
    "jwt",
    "anyio",
    "asyncio",
    "json",
    "logging",
)
_FILE = re.compile(r"\(([^():]+):\d+\)$")


def package(frame: str) -> str:
    match = _FILE.search(frame)
    path = match.group(1) if match else frame
    for name in PACKAGES:
        if path.startswith(name + "/") or f"/{name}/" in path:
            return name
    return "other (stdlib, C extensions, idle)"


def summarize(path: Path) -> dict[str, Any]:
    """Shares of samples by package (self) and by layer (inclusive); top frames."""
    own: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    total = 0
    pending = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        # A frame name can span lines (SQLAlchemy's generated wrappers carry their source):
        # a sample ends with its count.
        stack, _, count = (pending + line).rpartition(" ")
        if not count.isdigit():
            pending += line + " "
            continue
        pending = ""
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        by_package[package(frames[-1])] += n
        for label, marker in LAYERS:
            if any(marker in f for f in frames):
                layers[label] += n
    total = max(total, 1)
    return {
        "samples": total,
        "packages": {k: round(100 * v / total, 1) for k, v in by_package.most_common()},
        "layers": {label: round(100 * layers[label] / total, 1) for label, _ in LAYERS},
        "top": [(round(100 * v / total, 1), k) for k, v in own.most_common(12)],
    }


def markdown(scale: str, summaries: dict[str, dict[str, Any]], rates: dict[str, float]) -> str:
    lines = [
        f"# Profile of the service at `{scale}` scale (py-spy, one worker, 32 connections)",
        "",
        "Share of the worker's samples. *By package* counts the innermost frame (self time); "
        "*by layer* counts a sample once for every layer on its stack (inclusive), so layers "
        "overlap. Reproduce: `.venv/bin/python -m bench.profile --scale " + scale + "`.",
        "",
    ]
    for name, summary in summaries.items():
        lines += [
            f"## {name} ({rates.get(name, 0):.0f} req/s under the profiler, "
            f"{summary['samples']} samples)",
            "",
            "| by package (self) | % |",
            "|---|--:|",
        ]
        lines += [f"| {k} | {v} |" for k, v in summary["packages"].items() if v >= 0.5]
        lines += ["", "| by layer (inclusive) | % |", "|---|--:|"]
        lines += [f"| {k} | {v} |" for k, v in summary["layers"].items()]
        lines += ["", "| top frames (self) | % |", "|---|--:|"]
        lines += [f"| `{frame[:110]}` | {pct} |" for pct, frame in summary["top"]]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="py-spy profile of the service under load.")
    parser.add_argument("--scale", choices=sorted(config.SCALES), default="small")
    parser.add_argument("--scenarios", default="get,curative,preventive,mixed")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--port", type=int, default=8751)
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise SystemExit("py-spy is missing: .venv/bin/pip install py-spy")
    scale = config.SCALES[args.scale]
    options = harness.parse(
        ["--scale", scale.name, "--duration", str(args.duration), "--workers", "1"]
    )
    data = config.RAW_DIR / f"data-{scale.name}-profile.lua"
    loop = asyncio.new_event_loop()
    conn: asyncpg.Connection = loop.run_until_complete(asyncpg.connect(config.database_url(scale)))
    summaries: dict[str, dict[str, Any]] = {}
    rates: dict[str, float] = {}
    server = harness.service_server(scale, 1, args.port)
    try:
        with harness.running(server):
            sessions = harness.login(server.url, scale)
            pool = loop.run_until_complete(pools.build(conn, sessions))
            pools.write_lua(pool, data)
            for name in args.scenarios.split(","):
                marks = loop.run_until_complete(state.snapshot(conn, pool))
                out = config.RAW_DIR / f"profile-{scale.name}-{name}.txt"
                try:
                    started = time.monotonic()
                    # py-spy leaves out idle samples: starting it just before wrk costs nothing.
                    spy_proc = subprocess.Popen(
                        [
                            spy,
                            "record",
                            "--pid",
                            str(server.processes()[0].pid),
                            "--rate",
                            str(args.rate),
                            "--duration",
                            str(args.duration),
                            "--format",
                            "raw",
                            "--output",
                            str(out),
                            "--gil",  # the thread running Python: idle threads are not time
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    result = harness.run_wrk(
                        server.url, name, args.duration, options, data, f"profile-{name}"
                    )
                    spy_proc.wait(timeout=60)
                    rates[name] = result["rps"]
                    summaries[name] = summarize(out)
                    elapsed = time.monotonic() - started
                    print(f"{name}: {result['rps']:.0f} req/s, profiled for {elapsed:.0f} s")
                finally:
                    loop.run_until_complete(harness.settle(conn, scale.database))
                    loop.run_until_complete(state.restore(conn, marks))
    finally:
        loop.run_until_complete(conn.close())
        loop.close()
    path = config.RESULTS_DIR / f"profile-{scale.name}.md"
    path.write_text(markdown(scale.name, summaries, rates), encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
