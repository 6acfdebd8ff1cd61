"""The printable register at size (issue 11, item 5): a site with 1 000 signed checks (one
observation every tenth), in a throwaway SQLite database, printed as PDF/A-2b.

``python -m bench.register_render [--checks 1000] [--format pdf|html] [--runs 1]`` builds the
database (migrations, then plain inserts: the bench measures the printing, not the writes),
renders the register ``--runs`` times through the service function the HTTP route calls, and
reports for each run the wall time and the CPU time of this process (the worker) and of the
compiler's child processes; then the worker's peak RSS (before rendering and after), the
children's (the largest one's: each reports its own high-water mark, ``VmHWM``, in the debug
log of ``register.printing.pdf``; ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` is no use here,
Linux counts in it the parent's memory the child was forked from) and the load average. Not
a timed test: run it by hand and write the figures in bench/README.md.
"""

# ruff: noqa: E501  (the SQL of the bench data reads best whole)
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import logging
import os
import random
import resource
import sqlite3
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

from interventions.db import create_database
from interventions.migrate import upgrade
from interventions.register.printing import service
from interventions.register.printing.service import Format
from interventions.storage.service import LocalStorage

START = dt.datetime(2026, 1, 1, 8, tzinfo=dt.UTC)


def _signature(n: int) -> bytes:
    """A different signature for every check: no two images are the same bytes (typst
    embeds identical images once per document, or per part: a repeating signature would
    spare it work a real register gives it; the line used to repeat every 90 checks)."""
    image = Image.new("RGB", (600, 200), "white")
    rng = random.Random(n)
    points = [(10 + 20 * i, 55 + rng.randrange(90)) for i in range(30)]
    ImageDraw.Draw(image).line(points, fill="navy", width=4)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def build(path: Path, storage_dir: Path, checks: int) -> None:
    """Organisation 1, site 1 with one rule, and ``checks`` executed, signed checks."""
    upgrade(f"sqlite:///{path}")
    now = "2026-12-01 00:00:00.000000"
    con = sqlite3.connect(path)
    with con:
        con.execute(
            "INSERT INTO organizations (id, name, created_at) VALUES (1, 'Lycée Bench', ?)", (now,)
        )
        con.execute(
            "INSERT INTO sites (id, organization_id, name, created_at) VALUES (1, 1, 'Bâtiment Été', ?)",
            (now,),
        )
        con.execute(
            "INSERT INTO rules (id, organization_id, name, type, created_at) VALUES (1, 1, 'Vérification des extincteurs', 1, ?)",
            (now,),
        )
        con.execute(
            "INSERT INTO site_rules (id, organization_id, site_id, rule_id, created_at) VALUES (1, 1, 1, 1, ?)",
            (now,),
        )
        con.execute(
            "INSERT INTO companies (id, organization_id, name, type, created_at) VALUES (1, 1, 'Sécurité Générale', 1, ?)",
            (now,),
        )
        # Every eight hours, closer when that would leave the printed year (2026).
        step = min(dt.timedelta(hours=8), dt.timedelta(days=360) / checks)
        for n in range(1, checks + 1):
            start = (START + step * n).strftime("%Y-%m-%d %H:%M:%S.000000")
            file_id = f"{n:032x}"
            key = f"1/{file_id}"
            (storage_dir / "1").mkdir(parents=True, exist_ok=True)
            png = _signature(n)
            (storage_dir / key).write_bytes(png)
            con.execute(
                "INSERT INTO stored_files (id, organization_id, name, mime_type, size, storage_key, uploaded_at, created_at)"
                " VALUES (?, 1, 's.png', 'image/png', ?, ?, ?, ?)",
                (file_id, len(png), key, now, now),
            )
            con.execute(
                "INSERT INTO interventions (id, organization_id, type, status, creation_status, check_type, code_pin,"
                " auto_created, scheduled_start, scheduled_end, actual_start, actual_end, provider_name, provider_email,"
                " provider_action_comment, provider_general_comment, company_id, signature_file_id, verified_at,"
                " decision_comment, created_at, updated_at)"
                " VALUES (?, 1, 1, 5, 2, 1, 123456, 0, ?, ?, ?, ?, 'Joël Bérard', 'joel@example.org',"
                " 'Vérification de 40 extincteurs, pesée des CO₂.', 'RAS', 1, ?, ?, 'Conforme.', ?, ?)",
                (n, start, start, start, start, file_id, start, now, now),
            )
            con.execute(
                "INSERT INTO intervention_site_rules (intervention_id, site_rule_id, organization_id) VALUES (?, 1, 1)",
                (n,),
            )
            if n % 10 == 0:
                con.execute(
                    "INSERT INTO anomalies (organization_id, site_id, title, risk, status, raised_by_intervention_id,"
                    " created_at, updated_at) VALUES (1, 1, ?, 1, 0, ?, ?, ?)",
                    (f"Extincteur déplacé n° {n}", n, start, start),
                )
    con.close()


async def render(path: Path, storage_dir: Path, fmt: Format) -> int:
    db = create_database(f"sqlite:///{path}", pool=False)
    storage = LocalStorage(storage_dir, "bench", 900)
    try:
        async with db.transaction(write=False) as executor:
            printed = await service.print_register(
                executor,
                storage,
                organization_id=1,
                site_id=1,
                start=dt.date(2026, 1, 1),
                end=dt.date(2026, 12, 31),
                fmt=fmt,
                base_url="http://127.0.0.1:8000",
            )
    finally:
        await db.dispose()
    size = printed.size
    printed.discard()  # as the route does once the file is sent
    return size


class ChildPeaks(logging.Handler):
    """Collects the peak RSS each compiler child process reports."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.peaks_kib: list[int] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "peak RSS" in record.msg:
            self.peaks_kib.append(int(record.args[-1]))  # type: ignore[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--format", choices=[f.value for f in Format], default="pdf")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    children = ChildPeaks()
    printing = logging.getLogger("interventions.register.printing.pdf")
    printing.setLevel(logging.DEBUG)
    printing.addHandler(children)
    with tempfile.TemporaryDirectory(prefix="register-bench-") as name:
        folder = Path(name)
        database, storage_dir = folder / "bench.db", folder / "storage"
        build(database, storage_dir, args.checks)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for run in range(1, args.runs + 1):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            count = len(children.peaks_kib)
            wall, cpu = time.perf_counter(), time.process_time()
            size = asyncio.run(render(database, storage_dir, Format(args.format)))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            child_cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            print(
                f"run {run}: {args.checks} checks, {args.format}: {size / 1024:.0f} KiB in "
                f"{wall:.2f} s wall; CPU {cpu:.2f} s worker + {child_cpu:.2f} s in "
                f"{len(children.peaks_kib) - count} child processes",
                flush=True,
            )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_peak = max(children.peaks_kib, default=0)
    load = ", ".join(f"{n:.2f}" for n in os.getloadavg())
    print(
        f"worker peak RSS {peak / 1024:.0f} MiB (before rendering {rss_before / 1024:.0f} MiB); "
        f"largest child's peak RSS {child_peak / 1024:.0f} MiB; load average {load}"
    )


if __name__ == "__main__":
    main()
