"""Measure a proposed src/ change before anyone makes it: the service with a runtime patch.

``python -m bench.experiment --scale small --patches pool,no-access-log`` runs, one worker,
the unpatched service and then the service with each patch, back to back, through the
harness's scenarios (same data, same wrk load, snapshot restored after each run), and writes
``bench/results/experiments-<scale>.md``. Nothing in src/ is touched: the patches are applied
in this launcher's process before uvicorn imports the app (one worker only, which uvicorn runs
in-process).

Patches:
- ``pool``: the engine's pool holds 32 connections (``pool_size=32, max_overflow=0``) instead
  of 10 + 20 overflow, so that 32 concurrent requests never open and close connections.
- ``no-access-log``: uvicorn without its per-request access log line.

``python -m bench.experiment --micro`` times one statement (read an intervention by id) done
four ways on one connection: the ORM with the statement built per call (as the service does),
the ORM with a statement built once, Core with a statement built once, and asyncpg.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

PATCHES = ("pool", "no-access-log")


def serve(port: int, patches: list[str]) -> None:
    """Run the service as ``interventions serve --no-migrate`` would, with ``patches``."""
    import uvicorn

    if "pool" in patches:
        from interventions import db

        original = db.create_async_engine  # type: ignore[attr-defined]

        def create_async_engine(url: str, **kwargs: Any) -> Any:
            if "pool_size" in kwargs:
                kwargs.update(pool_size=32, max_overflow=0)
            return original(url, **kwargs)

        db.create_async_engine = create_async_engine  # type: ignore[attr-defined,assignment]

    from interventions.config import get_settings

    get_settings().resolved_secret()
    uvicorn.run(
        "interventions.asgi:app",
        host="127.0.0.1",
        port=port,
        workers=1,
        proxy_headers=True,
        log_level="info",
        access_log="no-access-log" not in patches,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the launched server
    parser.add_argument("--patches", default=",".join(PATCHES))
    parser.add_argument("--scale", default="small")
    parser.add_argument("--scenarios", default="get,curative,mixed")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2, help="baseline/patched alternations")
    parser.add_argument("--micro", action="store_true", help="time one statement four ways")
    parser.add_argument("--render", action="store_true", help="redo the table from raw/")
    args, _ = parser.parse_known_args()
    if args.render:
        import json

        from bench import config

        raw = config.RAW_DIR / f"experiments-{args.scale}.json"
        print(f"wrote {render(json.loads(raw.read_text(encoding='utf-8')))}")
        return
    if args.micro:
        import asyncio

        asyncio.run(micro(args.scale))
        return
    patches = [p for p in args.patches.split(",") if p]
    if args.serve:
        serve(args.serve, patches)
        return
    unknown = set(patches) - {*PATCHES, "all"}
    if unknown:
        raise SystemExit(f"unknown patches: {', '.join(sorted(unknown))}")
    run(args.scale, patches, args.scenarios, args.duration, args.rounds)


async def micro(scale_name: str, calls: int = 2000) -> None:
    """Microseconds per statement, four ways, sequentially on one connection (round trip
    to PostgreSQL included)."""
    import time
    from collections.abc import Awaitable, Callable

    from sqlalchemy import bindparam, select

    from bench import config
    from interventions.db import create_database
    from interventions.interventions.models import Intervention

    db = create_database(config.database_url(config.SCALES[scale_name]))
    lines = []

    async def timed(label: str, call: Callable[[int], Awaitable[Any]]) -> None:
        for i in range(200):  # warm: statement caches, prepared statements
            await call(i + 1)
        began = time.perf_counter()
        for i in range(calls):
            await call(i % 2000 + 1)
        lines.append(f"| {label} | {(time.perf_counter() - began) / calls * 1e6:.0f} |")

    table = Intervention.__table__
    orm_once = select(Intervention).where(
        Intervention.organization_id == bindparam("o"),
        Intervention.deleted_at.is_(None),
        Intervention.id == bindparam("i"),
    )
    core_once = select(table).where(
        table.c.organization_id == bindparam("o"),
        table.c.deleted_at.is_(None),
        table.c.id == bindparam("i"),
    )
    sql = (
        "SELECT * FROM interventions WHERE organization_id = $1 AND deleted_at IS NULL AND id = $2"
    )
    async with db.reader() as session, session.begin():

        async def orm_per_call(i: int) -> Any:
            stmt = select(Intervention).where(
                Intervention.organization_id == 1,
                Intervention.deleted_at.is_(None),
                Intervention.id == i,
            )
            return (await session.execute(stmt)).scalar_one_or_none()

        async def orm_built_once(i: int) -> Any:
            return (await session.execute(orm_once, {"o": 1, "i": i})).scalar_one_or_none()

        conn = await session.connection()

        async def core_built_once(i: int) -> Any:
            return (await conn.execute(core_once, {"o": 1, "i": i})).first()

        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None

        async def asyncpg_direct(i: int) -> Any:
            return await raw.fetchrow(sql, 1, i)

        await timed("ORM, statement built per call (the service today)", orm_per_call)
        await timed("ORM, statement built once (bindparam)", orm_built_once)
        await timed("Core, statement built once, plain rows", core_built_once)
        await timed("asyncpg on the same connection", asyncpg_direct)
    await db.dispose()
    print("| read one intervention by id | µs per statement |\n|---|--:|")
    print("\n".join(lines))


def run(scale_name: str, patches: list[str], scenarios: str, duration: int, rounds: int) -> None:
    import json

    from bench import config, harness

    options = harness.parse(
        [
            "--scale",
            scale_name,
            "--duration",
            str(duration),
            "--workers",
            "1",
            "--scenarios",
            scenarios,
            "--quiet-budget",
            "600",
        ]
    )
    bench = harness.Bench(options)
    scale = options.scale
    variants: list[tuple[str, list[str]]] = [("baseline", [])] + [(p, [p]) for p in patches]
    if len(patches) > 1:
        variants.append(("+".join(patches), patches))
    try:
        bench.prepare()
        for _ in range(rounds):
            for label, chosen in variants:
                server = harness.service_server(scale, 1, options.port)
                server.name = f"experiment-{label}"
                server.argv = [
                    sys.executable,
                    "-m",
                    "bench.experiment",
                    "--serve",
                    str(options.port),
                    "--patches",
                    ",".join(chosen),
                ]
                server.env["PYTHONPATH"] = str(config.REPO_DIR)
                bench.target(server, label, 1)
    finally:
        bench.close()
    saved = {
        "scale": scale.name,
        "patches": patches,
        "variants": [label for label, _ in variants],
        "scenarios": options.scenarios,
        "connections": options.connections,
        "duration": duration,
        "rounds": rounds,
        "runs": bench.runs,
    }
    (config.RAW_DIR / f"experiments-{scale.name}.json").write_text(
        json.dumps(saved, indent=1), encoding="utf-8"
    )
    path = render(saved)
    print(f"wrote {path}")


def render(saved: dict[str, Any]) -> Path:
    """The Markdown table of an experiment (``--render`` redoes it from raw/)."""
    import statistics

    from bench import config, harness

    # Per variant and scenario, the runs on a quiet machine when there are any.
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for result in saved["runs"]:
        groups.setdefault((result["target"], result["scenario"]), []).append(result)
    by: dict[tuple[str, str], tuple[list[dict[str, Any]], bool]] = {}
    for key, results in groups.items():
        quiet = [r for r in results if r["cpu_cores"]["other"] < harness.Quiet.THRESHOLD]
        by[key] = (quiet or results, bool(quiet))
    lines = [
        f"# Experiments at `{saved['scale']}` scale: the service with runtime patches",
        "",
        f"One worker, {saved['connections']} connections, {saved['duration']} s per run, "
        f"{saved['rounds']} round(s) of the variants one after the other; median of the runs "
        "made on a quiet machine (\\* when none was: other processes took CPU). Reproduce: "
        f"`.venv/bin/python -m bench.experiment --scale {saved['scale']} "
        f"--patches {','.join(saved['patches'])}`.",
        "",
        "| variant | scenario | req/s | vs baseline | p50 ms | p99 ms | new PG sessions/run "
        "| errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for label in saved["variants"]:
        for name in saved["scenarios"]:
            if (label, name) not in by:
                continue
            results, was_quiet = by[(label, name)]
            base, _ = by.get(("baseline", name), ([], False))
            rps = statistics.median(r["rps"] for r in results)
            base_rps = statistics.median(r["rps"] for r in base) if base else 0
            mark = "" if was_quiet else " \\*"
            lines.append(
                f"| {label}{mark} | {name} | {rps:.0f} | "
                f"{rps / base_rps if base_rps else 0:.2f}× | "
                f"{statistics.median(r['p50_ms'] for r in results):.0f} | "
                f"{statistics.median(r['p99_ms'] for r in results):.0f} | "
                f"{statistics.median(r['pg_sessions_opened'] for r in results):.0f} | "
                f"{sum(r['errors'] + r['socket_errors'] for r in results)} |"
            )
    others = [r["cpu_cores"]["other"] for r in saved["runs"]]
    lines += [
        "",
        f"Other processes used {min(others):.2f}–{max(others):.2f} cores during these runs.",
        "",
    ]
    path: Path = config.RESULTS_DIR / f"experiments-{saved['scale']}.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


if __name__ == "__main__":
    main()
