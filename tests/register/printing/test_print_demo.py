"""Issue 11's "done when": a fresh database's ``interventions demo`` and the register commands
print a site's register and its commission pack (item 7: a year of history worth reading)."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from interventions.cli import cli
from interventions.config import get_settings
from tests.helpers import run_sql

runner = CliRunner()


@pytest.fixture
def postgres_server(backend: str, request: pytest.FixtureRequest) -> str | None:
    return str(request.getfixturevalue("postgres_url")) if backend == "postgresql" else None


@pytest.fixture
async def fresh_url(postgres_server: str | None, tmp_path: Path) -> AsyncIterator[str]:
    if postgres_server is None:
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    name = f"interventions_print_{uuid.uuid4().hex[:12]}"
    await run_sql(f'CREATE DATABASE "{name}"', postgres_server)
    try:
        yield f"{postgres_server.rpartition('/')[0]}/{name}"
    finally:
        await run_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', postgres_server)


def _run(url: str, tmp_path: Path, *args: str) -> Result:
    env = {
        "INTERVENTIONS_DATABASE_URL": url,
        "INTERVENTIONS_SECRET_FILE": str(tmp_path / "secret"),
        "INTERVENTIONS_STORAGE_DIR": str(tmp_path / "storage"),
        "INTERVENTIONS_PUBLIC_URL": None,
    }
    get_settings.cache_clear()
    try:
        return runner.invoke(cli, list(args), env=env)
    finally:
        get_settings.cache_clear()


async def invoke(url: str, tmp_path: Path, *args: str) -> Result:
    result = await asyncio.to_thread(_run, url, tmp_path, *args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"the command crashed: {result.exception!r}\n{result.output}")
    return result


def _text(path: Path) -> str:
    done = subprocess.run(["pdftotext", "-raw", str(path), "-"], capture_output=True, check=True)
    return " ".join(done.stdout.decode("utf-8").split())


def _pages(path: Path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, check=True).stdout
    return int(info.decode().split("Pages:")[1].split()[0])


def _exists(path: str) -> bool:
    return Path(path).exists()


async def test_the_demo_prints_a_register_worth_reading(fresh_url: str, tmp_path: Path) -> None:
    assert (await invoke(fresh_url, tmp_path, "demo")).exit_code == 0
    register, pack = tmp_path / "register.pdf", tmp_path / "pack.pdf"
    args = ("--organization", "1", "--site", "1")
    assert (
        await invoke(fresh_url, tmp_path, "register", "print", *args, str(register))
    ).exit_code == 0
    assert (
        await invoke(fresh_url, tmp_path, "register", "commission-pack", *args, str(pack))
    ).exit_code == 0
    text = _text(register)
    for wanted in (
        "Lycée Jean Moulin (démo)",
        "Bâtiment A",
        "Contrôle des ascenseurs",
        "Hélène Lefèvre",
        "Vérification des extincteurs",
        "Joël Bérard",
        "Extincteur CO₂ périmé au 2e étage",
        "Remplacement de l'extincteur CO₂ du 2e étage",
        "Exercice d'évacuation",
        "Signalétique d'extincteur manquante",
        "not executed",  # the missed lift visit
        "last check",  # the electrical installations, a year and a month ago
    ):
        assert wanted in text, wanted
    assert "signature not uploaded" not in text.split("2. Curative works")[0]
    assert "Journal position entry 0," not in text  # the demo is in the journal
    pack_text = _text(pack)
    assert "Commission pack" in pack_text
    assert "Porte coupe-feu bloquée" in pack_text  # open, risk 3, first
    assert _pages(pack) == 1

    html = await invoke(fresh_url, tmp_path, "register", "print", *args, "--format", "html", "-")
    assert html.exit_code == 0
    assert "<!DOCTYPE html>" in html.output
    assert "Hélène Lefèvre" in html.output


async def test_the_commands_refuse_what_they_cannot_print(fresh_url: str, tmp_path: Path) -> None:
    assert (await invoke(fresh_url, tmp_path, "demo")).exit_code == 0
    out = str(tmp_path / "x.pdf")
    missing = await invoke(
        fresh_url, tmp_path, "register", "print", "--organization", "1", "--site", "999", out
    )
    assert missing.exit_code == 1
    assert "No site 999" in missing.output
    other = await invoke(
        fresh_url, tmp_path, "register", "print", "--organization", "2", "--site", "1", out
    )
    assert other.exit_code == 1
    bad = await invoke(
        fresh_url,
        tmp_path,
        "register",
        "print",
        "--organization",
        "1",
        "--site",
        "1",
        "--from",
        "2026-02-30",
        out,
    )
    assert bad.exit_code == 2
    assert "--from" in bad.output
    assert not _exists(out)
