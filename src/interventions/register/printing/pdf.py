"""The PDF/A-2b rendering: typst source written part by part (``source.py``), each part laid
out in a child process (``compile_worker.py``) as soon as it is written; the last child also
lays out the page count and joins the parts (``joining.py``).

Why children: typst holds every page it lays out until it has written the PDF (267 MiB for
1 000 checks in one piece), and a long-running worker that had once held that kept it. A child
gives it back when it exits; the worker holds the source of one part and the blocks of one
batch of rows, and sends the finished document from its file (``service.Printed``). Why
parts: the child's peak then follows the part's size, not the register's (bench/README.md
"The printable register").

The worker writes part n + 1 while a child lays out part n (a stream of one part between
them), so the database reads and signature shrinking overlap the layout on two cores. Parts
are laid out one after the other: each needs the page its predecessor ended on. A child that
fails or outlives ``timeout`` is a ``RenderFailed`` (the child is killed); the caller removes
the folder either way (``render_pdf`` and ``service`` do)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from interventions.register.printing.content import Block
from interventions.register.printing.source import PART_ROWS, Part, TypstWriter, stamp_source

logger = logging.getLogger(__name__)
WORKER = "interventions.register.printing.compile_worker"


class RenderFailed(Exception):
    """The PDF could not be made: the compiler's child process failed or took too long."""


@dataclass(frozen=True)
class Compiler:
    """How parts are laid out: ``rows`` per part, ``timeout`` seconds for one child process
    (a part of 250 rows takes about half a second on an idle machine, several times that on
    a loaded one), with the service's own interpreter."""

    rows: int = PART_ROWS
    timeout: float = 120.0
    python: str = sys.executable

    async def run(self, *args: str) -> dict[str, Any]:
        command = [self.python, "-m", WORKER, *args]
        try:
            with anyio.fail_after(self.timeout):
                # Cancelled by the timeout (or the request), anyio kills the child.
                done = await anyio.run_process(command, stdin=subprocess.DEVNULL, check=False)
        except TimeoutError:
            raise RenderFailed(
                f"the PDF compiler ({args[0]}) took longer than {self.timeout:g} s"
            ) from None
        if done.returncode != 0:
            said = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise RenderFailed(
                f"the PDF compiler ({args[0]}) failed with status {done.returncode}: "
                + (said[-1] if said else "nothing said")
            )
        result: dict[str, Any] = json.loads(done.stdout)
        logger.debug(
            "printing: %s done in a child process: %s pages, its peak RSS %s KiB",
            args[0],
            result["pages"],
            result["peak_kib"],
        )
        return result

    async def compile(
        self, source: Path, timestamp: dt.datetime, tagged: bool = True, **inputs: object
    ) -> tuple[Path, int]:
        """``source`` laid out as PDF/A-2b beside it; the path and its number of pages."""
        output = source.with_suffix(".pdf")
        plan = {
            "source": str(source),
            "output": str(output),
            "timestamp": _seconds(timestamp),
            "inputs": {key: str(value) for key, value in inputs.items()},
            "tagged": tagged,
        }
        result = await self.run("compile", json.dumps(plan))
        return output, int(result["pages"])


def _seconds(timestamp: dt.datetime) -> int:
    return int(timestamp.timestamp())


DEFAULT = Compiler()


async def render_pdf(
    blocks: AsyncIterator[Block], timestamp: dt.datetime, compiler: Compiler = DEFAULT
) -> bytes:
    """The blocks as a PDF/A-2b document, its bytes (``render_pdf_file`` keeps it on disk)."""
    with tempfile.TemporaryDirectory(prefix="register-") as name:
        return (await render_pdf_file(Path(name), blocks, timestamp, compiler)).read_bytes()


async def render_pdf_file(
    folder: Path,
    blocks: AsyncIterator[Block],
    timestamp: dt.datetime,
    compiler: Compiler = DEFAULT,
) -> Path:
    """The blocks as a PDF/A-2b document in ``folder`` (with its sources and parts), so that
    it can be sent from there; ``timestamp`` is its creation date (fixed by the data, so
    that the same data gives the same bytes)."""
    writer = TypstWriter(folder, compiler.rows)
    send, receive = anyio.create_memory_object_stream[tuple[Part, bool]](1)
    done: list[Path] = []
    failure: BaseException | None = None
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(_lay_out, receive, writer, timestamp, compiler, done)
            async with send:
                async for block in blocks:
                    part = writer.write(block)
                    if part is not None:
                        await send.send((part, False))
                await send.send((writer.close(), True))
    except BaseExceptionGroup as group:
        failure = _first(group)
    finally:
        receive.close()
        writer.abandon()
    if failure is not None:
        # Raised as it came (a RenderFailed, a database error…), not in a group, and
        # outside the handler, so that its own cause and context stay as they were.
        raise failure
    return done[0]


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that stopped the document: one task failed, the other was cancelled."""
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first


async def _lay_out(
    parts: MemoryObjectReceiveStream[tuple[Part, bool]],
    writer: TypstWriter,
    timestamp: dt.datetime,
    compiler: Compiler,
    done: list[Path],
) -> None:
    """Compiles each part as it comes; the last one with the page count and the joining."""
    compiled: list[tuple[Path, Part]] = []
    start = 1
    # The stream stays open when a part fails: the writer's next send then waits, and is
    # cancelled with the group, rather than failing with an error of its own.
    async for part, last in parts:
        if last and not compiled:  # the whole document in one part
            pdf, _ = await compiler.compile(part.path, timestamp, numbers="whole")
            done.append(pdf)
        elif last:
            done.append(await _finish(part, compiled, start, writer, timestamp, compiler))
        else:
            # Untagged: the parts' structure trees are not joined (PDF/A-2b requires none).
            pdf, pages = await compiler.compile(
                part.path, timestamp, tagged=False, numbers="hidden", start=start
            )
            compiled.append((pdf, part))
            start += pages


async def _finish(
    last: Part,
    compiled: list[tuple[Path, Part]],
    start: int,
    writer: TypstWriter,
    timestamp: dt.datetime,
    compiler: Compiler,
) -> Path:
    output = writer.folder / "register.pdf"
    plan = json.dumps(
        {
            "last": str(last.path),
            "start": start,
            "timestamp": _seconds(timestamp),
            "parts": [str(pdf) for pdf, _ in compiled],
            "headings": [part.headings for _, part in [*compiled, (None, last)]],
            "stamp": str(stamp_source(writer)),
            "output": str(output),
        }
    )
    await compiler.run("finish", plan)
    return output
