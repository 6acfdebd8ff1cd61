"""The README's "Verifying the register" runs as written: its blocks, pasted into bash in
order, against a real server (uvicorn on a free port) and the ``interventions`` command on
the same database, with the session "Trying it" opens (``$B``, ``$H``, ``field``). Any
failed command or HTTP request fails it."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

from interventions.app import create_app
from interventions.config import Settings
from interventions.db import Database
from tests.factories import Factory
from tests.helpers import record_entries
from tests.live_server import LiveServer

ROOT = Path(__file__).resolve().parents[2]

PRELUDE = r"""
set -euo pipefail
curl() { command curl --fail-with-body "$@"; }
field() { python3 -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1:]: v = v[int(k)] if isinstance(v, list) else v[k]
print(v)' "$@"; }
"""


def _blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for part in re.split(r"(?m)^(?=## )", readme):
        if part.startswith("## Verifying the register"):
            return re.findall(r"(?ms)^```sh\n(.*?)^```", part)
    return []


async def test_the_section_runs_as_written(
    factory: Factory, settings: Settings, database: Database, tmp_path: Path
) -> None:
    blocks = _blocks()
    assert len(blocks) == 3
    org = await factory.org()
    await record_entries(database, org.id, 5)
    server = await asyncio.to_thread(LiveServer(create_app(settings)).start)
    try:
        headers = " ".join(f"-H '{name}: {value}'" for name, value in org.admin.headers.items())
        script = (
            PRELUDE
            + f"B={server.url}\nH=({headers} -H 'content-type: application/json')\n"
            + "\n".join(blocks)
        )
        env = {
            "PATH": "/usr/bin:/bin:/usr/local/bin",
            "TMPDIR": str(tmp_path),
            "INTERVENTIONS_DATABASE_URL": settings.database_url,
            "INTERVENTIONS_SECRET_KEY": settings.secret_key,
            "INTERVENTIONS_STORAGE_DIR": str(settings.storage_dir),
            "INTERVENTIONS_REGISTER_KEYS_DIR": str(settings.register_keys_dir),
        }
        run = await asyncio.to_thread(
            subprocess.run,
            ["bash", "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        await asyncio.to_thread(server.stop)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert '"valid":true' in run.stdout
    assert "OK: 5 entries, 1 checkpoints" in run.stdout  # the inspector's check
    assert f"organisation {org.id}: OK: 5 entries, 1 checkpoints" in run.stdout
    assert (tmp_path / "register-cli.zip").is_file()
