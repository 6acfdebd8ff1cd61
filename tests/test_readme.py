"""The README's walk-through runs as written: ``scripts/walkthrough`` pastes its blocks into
bash against a real server (``./scripts/serve``) on the embedded default, on a free port, with
every state file in a temporary directory. Any failed command or HTTP request fails it."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
from pathlib import Path

from tests.smtp_server import free_port

ROOT = Path(__file__).resolve().parent.parent


def _blocks(section: str) -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for part in re.split(r"(?m)^(?=## )", readme):
        if part.startswith(section):
            return re.findall(r"(?ms)^```sh\n(.*?)^```", part)
    return []


def test_the_readme_starts_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = re.match(r"```sh\n(.*?)```", readme, re.S)
    assert first is not None
    commands = [line.split("#")[0].strip() for line in first.group(1).splitlines()]
    assert commands == ["./scripts/serve", "./scripts/test"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "exec bash scripts/test" in ci


def test_walkthrough_json_bodies_have_no_raw_newline_inside_a_string() -> None:
    """A raw newline inside a JSON string is a 400 (it once was in step 004)."""
    sections = (
        "## Trying it",
        "## Safe retries and conditional requests",
        "## The whole path",
        "## Webhooks",
    )
    for block in [b for section in sections for b in _blocks(section)]:
        for body in re.findall(r"-d '(\{.*?\})'", block, re.S):
            in_string = False
            for char in body.replace('\\"', ""):
                if char == '"':
                    in_string = not in_string
                assert not (in_string and char == "\n"), body


def test_the_walkthrough_runs_as_written(tmp_path: Path) -> None:
    port = free_port()
    database = tmp_path / "walkthrough.db"
    env = {
        **os.environ,
        "PORT": str(port),
        "INTERVENTIONS_DATABASE_URL": f"sqlite:///{database}",
        "INTERVENTIONS_SECRET_FILE": str(tmp_path / "secret"),
        "INTERVENTIONS_STORAGE_DIR": str(tmp_path / "storage"),
        "INTERVENTIONS_OUTBOX_DIR": str(tmp_path / "outbox"),
        # The README waits for the planner; here it need not wait a minute.
        "INTERVENTIONS_PLANNER_INTERVAL_SECONDS": "1",
        "HOOK_PORT": str(free_port()),  # the webhook receiver's
    }
    for name in ("INTERVENTIONS_SMTP_HOST", "INTERVENTIONS_PUBLIC_URL", "INTERVENTIONS_SECRET_KEY"):
        env.pop(name, None)
    run = subprocess.run(
        ["bash", str(ROOT / "scripts" / "walkthrough")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,  # every section's block, each starting the server; slow on a busy host
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    out = run.stdout
    assert f"http://127.0.0.1:{port}" in out  # the demo prints the server's own address
    assert '"presignedUrl":"http://127.0.0.1:' in out.replace(" ", "")
    # What the walk-through did is in the database it used, and nowhere else.
    with sqlite3.connect(database) as db:
        statuses = dict(db.execute("SELECT id, status FROM interventions WHERE id <= 2"))
        assert statuses[2] == 5  # the drill, validated (003)
        # The unplanned check (001), rejected (004); the demo's history took the next ids.
        unplanned = db.execute(
            "SELECT status FROM interventions WHERE provider_name = 'Provider name Provider name'"
        )
        assert [s for (s,) in unplanned] == [6]
        by_routine = [
            s
            for (s,) in db.execute(
                "SELECT status FROM interventions WHERE auto_created ORDER BY scheduled_start"
            )
        ]
        assert by_routine[:2] == [5, 7]  # accepted, then the cancelled next occurrence
        stored = db.execute(
            "SELECT count(*) FROM stored_files WHERE uploaded_at IS NOT NULL"
            " AND name IN ('example.jpg', 'tom.jpg')"  # the walk-through's, not the demo's
        )
        # The unplanned check's, the routine's check, and the drill signed through a link.
        assert stored.fetchone()[0] == 3
        # Webhooks: the drill's two events delivered, one of them replayed.
        hooks = db.execute(
            "SELECT event_type, status, replays FROM webhook_deliveries ORDER BY journal_seq"
        )
        delivered = hooks.fetchall()
        assert [(t, s) for t, s, _ in delivered] == [
            ("intervention.created", "delivered"),
            ("intervention.cancelled", "delivered"),
        ]
        assert sum(r for _, _, r in delivered) == 1
    # The printable register's block printed site 1's register and commission pack.
    for printed in ("register-site-1.pdf", "commission-pack-site-1.pdf", "register-cli.pdf"):
        assert Path("/tmp", printed).read_bytes().startswith(b"%PDF-"), printed
    emails = list((tmp_path / "outbox").glob("*.eml"))
    assert emails, "no e-mail relayed"
