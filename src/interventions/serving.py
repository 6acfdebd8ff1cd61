"""The serving process: uvicorn and the application, and nothing of the command line.

``interventions serve`` prepares (migrations, the secret, the register's signing key) and then
replaces itself with ``python -m interventions.serving '<uvicorn options as JSON>'``: the same
process id (for a supervisor and its signals), but a fresh interpreter. The command line's
own imports — Alembic and Mako for the migrations, Typer and Rich — stayed in the one worker
of ``--workers 1`` for as long as it served (~22 MiB of its peak RSS; bench/README.md).
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any


def lean_log_records() -> None:
    """Log records without what none of the service's log lines prints (the logging HOWTO,
    "Optimization"): the calling frame's file and line, which ``logging`` finds by walking
    the stack, and the thread's and process's names. The access log makes a record for every
    request (~4 µs of CPU less each; bench/README.md, log step 38)."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    options: dict[str, Any] = json.loads((argv or sys.argv[1:])[0])
    lean_log_records()
    uvicorn.run("interventions.asgi:app", **options)


if __name__ == "__main__":
    main()
