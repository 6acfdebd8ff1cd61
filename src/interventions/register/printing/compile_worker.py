"""The typst compiler and the joining of parts, run in a child process of the service.

``python -m interventions.register.printing.compile_worker compile|finish ARGS…``, started by
``pdf.py``: the compiler holds the laid-out pages of what it compiles, and a process of its
own gives that memory back to the system when it exits, whatever typst's caches keep; the
service's worker never holds it. One process per part, so the peak is one part's.

``compile`` lays out one part. ``finish`` lays out the last part, then the page count of the
whole document (known once that part is laid out: ``source.py``), and joins
everything (``joining.py``), in one process rather than three to save their start-up. A
document of one part needs neither: ``pdf.py`` asks for ``compile`` alone.

It imports typst, pikepdf (to join) and the standard library only: no settings, no database,
nothing of the service, so that it starts in a few hundredths of a second. A failure is one
line on standard error and exit status 1; the result is one line of JSON on standard output,
with the process's peak resident memory (``peak_kib``, for the log and the benchmark)."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import re
import resource
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

# typst writes the page count into the document's XMP metadata, which it does not compress.
_NPAGES = re.compile(rb"<xmpTPg:NPages>(\d+)</xmpTPg:NPages>")


def compile_part(
    source: Path, output: Path, timestamp: int, inputs: dict[str, str], tagged: bool
) -> int:
    """Lays out ``source`` as PDF/A-2b into ``output``; returns its number of pages."""
    import typst

    pdf = typst.compile(
        str(source),
        root=str(source.parent),
        font_paths=[],
        ignore_system_fonts=True,
        sys_inputs=inputs,
        pdf_standards="a-2b",
        timestamp=dt.datetime.fromtimestamp(timestamp, dt.UTC),
        pdf_tags=tagged,
    )
    assert isinstance(pdf, bytes)
    output.write_bytes(pdf)
    found = _NPAGES.search(pdf)
    if found is None:
        raise ValueError("typst wrote no page count in the document's metadata")
    return int(found[1])


def finish(plan: dict[str, Any]) -> int:
    """Lays out the last part and the page count, joins the parts; returns the page count.

    One after the other, so that the process's peak is the largest step's, not their sum; but
    pikepdf is imported while typst lays out the last part (typst lets go of the GIL)."""
    parts = [Path(p) for p in plan["parts"]]
    last = Path(plan["last"])
    start, timestamp = int(plan["start"]), int(plan["timestamp"])
    with ThreadPoolExecutor(max_workers=1) as pool:
        importing = pool.submit(importlib.import_module, "interventions.register.printing.joining")
        inputs = {"numbers": "hidden", "start": str(start)}
        pages = compile_part(last, last.with_suffix(".pdf"), timestamp, inputs, tagged=False)
        joining = importing.result()
    total = start + pages - 1
    stamp = Path(plan["stamp"])
    inputs = {"numbers": "stamp", "total": str(total)}
    compile_part(stamp, stamp.with_suffix(".pdf"), timestamp, inputs, tagged=False)
    headings: list[list[int]] = plan["headings"]
    joined = joining.Joined(parts[0], headings[0])
    try:
        for path, levels in zip([*parts[1:], last.with_suffix(".pdf")], headings[1:], strict=True):
            joined.append(path, levels)
        joined.write(stamp.with_suffix(".pdf"), Path(plan["output"]))
    finally:
        joined.close()
    return total


def peak_kib() -> int:
    """This process's peak resident memory. Not ``getrusage``: Linux carries over to it the
    peak of the parent's memory that the child was forked from, before it ran Python."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="compile_worker")
    commands = parser.add_subparsers(dest="command", required=True)
    compile_ = commands.add_parser("compile", help="lay out one part")
    compile_.add_argument("source", type=Path)
    compile_.add_argument("output", type=Path)
    compile_.add_argument("--timestamp", type=int, required=True, help="UNIX seconds")
    compile_.add_argument("--input", action="append", default=[], help="KEY=VALUE")
    compile_.add_argument("--untagged", action="store_true")
    finish_ = commands.add_parser("finish", help="last part, page count, join")
    finish_.add_argument("plan", type=Path, help="JSON: last, start, parts, headings, …")
    args = parser.parse_args(argv)
    try:
        if args.command == "compile":
            inputs = dict(item.split("=", 1) for item in args.input)
            pages = compile_part(
                args.source, args.output, args.timestamp, inputs, not args.untagged
            )
        else:
            pages = finish(json.loads(args.plan.read_text(encoding="utf-8")))
    except Exception as error:  # reported to the parent, which raises RenderFailed
        message = getattr(error, "message", None) or str(error) or type(error).__name__
        print(f"{type(error).__name__}: {message}".replace("\n", " "), file=sys.stderr)
        return 1
    print(json.dumps({"pages": pages, "peak_kib": peak_kib()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
