"""The serving process carries the application and nothing more (issue 10: ≤ 120 MiB per
worker): ``interventions serve`` replaces itself with ``interventions.serving``, and the
application does not import what only the command line, the background work or the printing
need."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.helpers import TEST_SECRET
from tests.smtp_server import free_port

# What the application must not bring into a serving process (bench/README.md, log step 32):
# the command line's (migrations, Typer, Rich), the relays' (HTTP client, SMTP), the
# checkpoints' time-stamps (asn1crypto), the printing's (Pillow, segno, typst, pikepdf).
NOT_SERVED = (
    "alembic",
    "mako",
    "typer",
    "rich",
    "httpx",
    "aiosmtplib",
    "asn1crypto",
    "PIL",
    "segno",
    "typst",
    "pikepdf",
)


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERVENTIONS_")}
    env.update(
        INTERVENTIONS_DATABASE_URL=f"sqlite:///{tmp_path / 'serving.db'}",
        INTERVENTIONS_SECRET_KEY=TEST_SECRET,
        INTERVENTIONS_RELAY_IN_PROCESS="false",
        INTERVENTIONS_STORAGE_DIR=str(tmp_path / "storage"),
    )
    return env


def test_the_application_imports_nothing_it_does_not_serve_with(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "import interventions.asgi\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "fastapi" in loaded
    assert "interventions" in loaded
    assert sorted(loaded & set(NOT_SERVED)) == []


def test_serve_becomes_the_serving_process(tmp_path: Path) -> None:
    """Same process id (a supervisor's signals reach uvicorn), a fresh interpreter running
    ``interventions.serving``, which answers and stops on SIGTERM."""
    port = free_port()
    command = Path(sys.executable).parent / "interventions"
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [str(command), "serve", "--port", str(port)],
            cwd=tmp_path,
            env=_env(tmp_path),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[1:3] == [b"-m", b"interventions.serving"], cmdline
        options = json.loads(cmdline[3])
        assert options["port"] == port
        assert options["workers"] == 1
    finally:
        process.terminate()
        process.wait(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal it stopped for.
    logged = (tmp_path / "serve.log").read_text()
    assert process.returncode in (0, -15), logged
    assert "Application shutdown complete" in logged
    # The access log, as uvicorn writes it (its records lean: serving.lean_log_records).
    assert '"GET /health HTTP/1.1" 200' in logged
