"""A printout long enough to be laid out in several parts, each in a child process, then
joined: read back as a reader would (poppler) and with pikepdf; and a child that fails."""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pikepdf
import pikepdf.pdfa
import pytest
from PIL import Image, ImageDraw

from interventions.register.printing.content import (
    Block,
    Column,
    Cover,
    Heading,
    Lines,
    Note,
    Row,
    TableEnd,
    TableStart,
)
from interventions.register.printing.coverage import Coverage, verification_url
from interventions.register.printing.pdf import Compiler, RenderFailed, render_pdf
from interventions.register.printing.signatures import Signature, shrink
from tests.factories import Factory

SIGNED = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
ROWS = 95  # in parts of 20 rows: five parts, the first table over all of them
SMALL = Compiler(rows=20)


def _signature(n: int) -> bytes | None:
    image = Image.new("RGB", (600, 200), "white")
    ImageDraw.Draw(image).line([(10, 100), (300, 40 + n % 120), (590, 150)], fill="navy", width=5)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return shrink(out.getvalue())


async def _blocks(rows: int = ROWS, broken: bool = False, smoke: int = 0) -> AsyncIterator[Block]:
    yield Cover(
        title="Safety register",
        organization="Lycée Molière",
        site="Bâtiment Été",
        site_archived=False,
        period=(dt.date(2026, 1, 1), dt.date(2026, 12, 31)),
        as_of=dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
        coverage=Coverage(4242, "cd" * 32, "ck42", SIGNED),
        verification_url=verification_url("https://registre.example.org/", "ck42"),
    )
    yield Heading("1. Checks, by rule")
    yield Heading("Extincteurs", 2)
    yield TableStart((Column("Check", "1fr"), Column("Outcome", "1fr"), Column("Sig.", "2.9cm")))
    for n in range(1, rows + 1):
        png = b"not a png at all" if broken and n == rows else _signature(n)
        yield Row(
            (
                Lines((f"Vérification n° {n:04d}", "planned"), strong=True),
                f"Conforme {n:04d}",
                Signature(f"sig-{n}", png),
            )
        )
    yield TableEnd()
    yield Heading("Désenfumage", 2)
    if smoke:
        yield TableStart((Column("Smoke check", "1fr"), Column("Outcome", "1fr")))
        for n in range(1, smoke + 1):
            yield Row((f"Désenfumage n° {n}", "Conforme"))
        yield TableEnd()
    else:
        yield Note("No check recorded in the period.")
    yield Heading("2. Curative works")
    yield TableStart((Column("Work", "1fr"), Column("Contractor", "1fr")))
    yield Row(("Remplacement d'un bloc", "Sécurité Générale"))
    yield TableEnd()


def _run(*command: str) -> str:
    return subprocess.run(command, capture_output=True, check=True).stdout.decode("utf-8")


def _page_lines(path: Path, pages: int) -> list[list[str]]:
    return [
        re.findall(
            r"page \d+(?: / \d+)?", _run("pdftotext", "-f", f"{i}", "-l", f"{i}", str(path), "-")
        )
        for i in range(1, pages + 1)
    ]


def _pages(path: Path) -> int:
    return int(re.findall(r"^Pages:\s+(\d+)$", _run("pdfinfo", str(path)), re.M)[0])


async def test_a_register_in_several_parts_reads_as_one_document(tmp_path: Path) -> None:
    pdf = await render_pdf(_blocks(), SIGNED, SMALL)
    path = tmp_path / "register.pdf"
    path.write_bytes(pdf)

    pages = _pages(path)
    assert pages >= 5  # one part starts a page at least
    # Every page numbered once, in order, with the whole document's total.
    assert _page_lines(path, pages) == [[f"page {i} / {pages}"] for i in range(1, pages + 1)]

    text = " ".join(_run("pdftotext", "-raw", str(path), "-").split())
    found = [int(n) for n in re.findall(r"Vérification n° (\d{4})", text)]
    assert found == list(range(1, ROWS + 1))  # every row once, in order, the first and last
    assert text.count("Check Outcome Sig.") >= 5  # the table's header again in each part
    assert "Remplacement d'un bloc" in text
    assert "checkpoint ck42, signed 01/12/2026 10:00 UTC" in text

    fonts = _run("pdffonts", str(path)).splitlines()[2:]
    assert fonts
    for line in fonts:
        assert re.search(r"\byes\s+yes\s+yes\b", line), line  # embedded, subset, unicode
    meta = _run("pdfinfo", "-meta", str(path))
    assert "<pdfaid:part>2</pdfaid:part>" in meta
    assert "<pdfaid:conformance>B</pdfaid:conformance>" in meta
    assert f"<xmpTPg:NPages>{pages}</xmpTPg:NPages>" in meta
    assert "<xmp:CreateDate>2026-12-01T10:00:00+00:00</xmp:CreateDate>" in meta

    with pikepdf.open(path) as document:
        assert document.Root.OutputIntents[0].S == "/GTS_PDFA1"
        assert document.docinfo["/CreationDate"] == "D:20261201100000Z"
        with document.open_outline() as outline:
            tree = [(item.title, [child.title for child in item.children]) for item in outline.root]
    assert tree == [
        ("1. Checks, by rule", ["Extincteurs", "Désenfumage"]),
        ("2. Curative works", []),
    ]

    last = tmp_path / "last"
    _run("pdftoppm", "-r", "40", "-f", f"{pages}", "-singlefile", "-png", str(path), str(last))
    image = Image.open(tmp_path / "last.png").convert("L")
    assert sum(image.histogram()[:128]) > 200, "the last page is blank"

    assert await render_pdf(_blocks(), SIGNED, SMALL) == pdf  # same data, same bytes


async def test_a_part_full_at_the_end_of_a_table_ends_there(tmp_path: Path) -> None:
    """The next table starts the next part with its heading: no header left alone at the
    bottom of the previous part's last page."""
    path = tmp_path / "register.pdf"
    path.write_bytes(await render_pdf(_blocks(rows=40, smoke=3), SIGNED, SMALL))
    text = " ".join(_run("pdftotext", "-raw", str(path), "-").split())
    assert text.count("Smoke check Outcome") == 1
    assert "Désenfumage Smoke check Outcome Désenfumage n° 1 Conforme" in text
    pages = _pages(path)
    assert _page_lines(path, pages) == [[f"page {i} / {pages}"] for i in range(1, pages + 1)]


def _findings(path: Path) -> set[tuple[str, str, str]]:
    """What pikepdf's PDF/A-2b validator (an allow-list: it denies what it does not know)
    says of the file, object numbers left out."""
    report = pikepdf.pdfa.validate_written(path, "2b")
    return {
        (f.rule, re.sub(r"\d+ 0 R|obj \d+ 0", "N", f.message), str(f.kind)) for f in report.findings
    }


async def test_joining_adds_nothing_a_pdfa_validator_denies(tmp_path: Path) -> None:
    """The validator denies typst's own output for things it cannot check (its fonts' CFF
    matrices, the XMP extension schemas): the joined document may have those, nothing else."""
    whole, parts = tmp_path / "whole.pdf", tmp_path / "parts.pdf"
    whole.write_bytes(await render_pdf(_blocks(), SIGNED, Compiler(rows=1000)))
    parts.write_bytes(await render_pdf(_blocks(), SIGNED, SMALL))
    assert _findings(parts) <= _findings(whole)


def _words(path: Path) -> list[tuple[str, float, float, float]]:
    """The words poppler finds on page 1, with their left, top and bottom."""
    html = _run("pdftotext", "-bbox", "-f", "1", "-l", "1", str(path), "-")
    found = re.findall(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)">([^<]*)</word>', html
    )
    return [(word, float(x), float(top), float(bottom)) for x, top, bottom, word in found]


def _page_line(path: Path, total: int) -> list[tuple[str, float, float, float]]:
    """The words of "page 1 / total" where they are drawn (the total after the rest)."""
    words = _words(path)
    (page,) = [w for w in words if w[0] == "page"]
    line = sorted((w for w in words if w[2:] == page[2:]), key=lambda w: w[1])
    assert [w[0] for w in line] == ["page", "1", "/", f"{total}"]
    return line


async def test_the_total_laid_over_a_part_is_where_the_part_would_print_it(
    tmp_path: Path,
) -> None:
    """The page count is a separate document laid over the parts: the same place as the
    count a document of one part prints itself, right after "page N /"."""
    whole, parts = tmp_path / "whole.pdf", tmp_path / "parts.pdf"
    whole.write_bytes(await render_pdf(_blocks(rows=30), SIGNED, Compiler(rows=1000)))
    parts.write_bytes(await render_pdf(_blocks(rows=30), SIGNED, SMALL))
    in_whole = _page_line(whole, _pages(whole))
    in_parts = _page_line(parts, _pages(parts))
    assert [w[1:] for w in in_whole[:3]] == [w[1:] for w in in_parts[:3]]  # "page 1 /"
    assert in_whole[3][1:] == in_parts[3][1:]  # the total: left, top, bottom


def _children() -> list[str]:
    """The command lines of this process's child processes."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == os.getpid():
                found.append((stat.parent / "cmdline").read_text().replace("\0", " "))
        except (OSError, IndexError, ValueError):
            continue
    return found


@pytest.mark.parametrize("rows", [5, ROWS])  # the last part alone, or after others
async def test_a_failing_child_is_an_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: int
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(RenderFailed, match=r"PDF compiler \((compile|finish)\) failed .*image"):
        await render_pdf(_blocks(rows, broken=True), SIGNED, SMALL)
    assert os.listdir(tmp_path) == []
    assert not [c for c in _children() if "compile_worker" in c]


async def test_a_child_past_its_time_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(RenderFailed, match=r"took longer than 0.05 s"):
        await render_pdf(_blocks(), SIGNED, Compiler(rows=20, timeout=0.05))
    assert os.listdir(tmp_path) == []
    assert not [c for c in _children() if "compile_worker" in c]


async def test_the_route_sends_the_pdf_from_its_file_and_removes_it(
    client: httpx.AsyncClient, factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker never reads the finished PDF whole: the route sends it from its temporary
    folder, which goes once it is sent."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    org = await factory.org()
    site = f"/register/v1/rs/sites/{org.site_ids[0]}"
    for url in (site, f"{site}/commission-pack"):
        r = await client.get(url, headers=org.viewer.headers)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/pdf"
        assert r.headers["content-length"] == str(len(r.content))
        assert r.headers["cache-control"] == "private, no-store"
        assert r.content.startswith(b"%PDF-")
        assert os.listdir(tmp_path) == []
