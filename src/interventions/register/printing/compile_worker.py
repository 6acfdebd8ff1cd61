"""The typst compiler and the joining of parts, run in a child process of the service.

``python -m interventions.register.printing.compile_worker compile|finish JSON``, started by
``pdf.py``: the compiler holds the laid-out pages of what it compiles, and a process of its
own gives that memory back to the system when it exits, whatever typst's caches keep; the
service's worker never holds it. One process per part, so the peak is one part's.

``compile`` lays out one part. ``finish`` lays out the last part, then the page count of the
whole document (known once that part is laid out: ``source.py``), and joins
everything (``joining.py``), in one process rather than three to save their start-up. A
document of one part needs neither: ``pdf.py`` asks for ``compile`` alone.

It imports typst, pikepdf (to join) and a few modules of the standard library: no settings,
no database, nothing of the service, not even argparse (its arguments are one JSON object), so
that it starts in a few hundredths of a second (one per part). A failure is one line on
standard error and exit status 1; the result is one line of JSON on standard output, with the
page count and the process's peak resident memory (``peak_kib``, for the log and the bench).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

# typst writes the page count into the document's XMP metadata, which it does not compress.
_NPAGES = re.compile(rb"<xmpTPg:NPages>(\d+)</xmpTPg:NPages>")


def compile_part(
    source: str, output: str, timestamp: int, inputs: dict[str, str], tagged: bool
) -> int:
    """Lays out ``source`` as PDF/A-2b into ``output``; returns its number of pages."""
    import datetime as dt

    import typst

    pdf = typst.compile(
        source,
        root=source.rpartition("/")[0] or ".",
        font_paths=[],
        ignore_system_fonts=True,
        sys_inputs=inputs,
        pdf_standards="a-2b",
        timestamp=dt.datetime.fromtimestamp(timestamp, dt.UTC),
        pdf_tags=tagged,
    )
    assert isinstance(pdf, bytes)
    with open(output, "wb") as out:
        out.write(pdf)
    found = _NPAGES.search(pdf)
    if found is None:
        raise ValueError("typst wrote no page count in the document's metadata")
    return int(found[1])


def finish(plan: dict[str, Any]) -> int:
    """Lays out the last part and the page count, joins the parts; returns the page count.

    One after the other, so that the process's peak is the largest step's, not their sum; but
    pikepdf is imported while typst lays out the last part (typst lets go of the GIL)."""
    import importlib
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    last, stamp = plan["last"], plan["stamp"]
    last_pdf, stamp_pdf = _pdf(last), _pdf(stamp)
    timestamp = int(plan["timestamp"])
    with ThreadPoolExecutor(max_workers=1) as pool:
        importing = pool.submit(importlib.import_module, "interventions.register.printing.joining")
        inputs = {"numbers": "hidden", "start": str(plan["start"])}
        pages = compile_part(last, last_pdf, timestamp, inputs, tagged=False)
        joining = importing.result()
    total = int(plan["start"]) + pages - 1
    compile_part(stamp, stamp_pdf, timestamp, {"numbers": "stamp", "total": str(total)}, False)
    parts = [Path(p) for p in [*plan["parts"], last_pdf]]
    headings: list[list[int]] = plan["headings"]
    joined = joining.Joined(parts[0], headings[0])
    try:
        for path, levels in zip(parts[1:], headings[1:], strict=True):
            joined.append(path, levels)
        joined.write(Path(stamp_pdf), Path(plan["output"]))
    finally:
        joined.close()
    return total


def _pdf(source: str) -> str:
    return source.removesuffix(".typ") + ".pdf"


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
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv: list[str]) -> int:
    """``compile {"source", "output", "timestamp", "inputs", "tagged"}`` or ``finish {plan}``."""
    try:
        command, plan = argv[1], json.loads(argv[2])
        if command == "compile":
            pages = compile_part(
                plan["source"], plan["output"], plan["timestamp"], plan["inputs"], plan["tagged"]
            )
        elif command == "finish":
            pages = finish(plan)
        else:
            raise ValueError(f"no command {command!r}")
    except Exception as error:  # reported to the parent, which raises RenderFailed
        message = getattr(error, "message", None) or str(error) or type(error).__name__
        print(f"{type(error).__name__}: {message}".replace("\n", " "), file=sys.stderr)
        return 1
    print(json.dumps({"pages": pages, "peak_kib": peak_kib()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
