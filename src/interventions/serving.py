"""The serving process: uvicorn and the application, and nothing of the command line.

``interventions serve`` prepares (migrations, the secret, the register's signing key) and then
replaces itself with ``python -m interventions.serving '<uvicorn options as JSON>'``: the same
process id (for a supervisor and its signals), but a fresh interpreter. The command line's
own imports — Alembic and Mako for the migrations, Typer and Rich — stayed in the one worker
of ``--workers 1`` for as long as it served (~22 MiB of its peak RSS; bench/README.md).
"""

from __future__ import annotations

import json
import sys
from typing import Any


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    options: dict[str, Any] = json.loads((argv or sys.argv[1:])[0])
    uvicorn.run("interventions.asgi:app", **options)


if __name__ == "__main__":
    main()
