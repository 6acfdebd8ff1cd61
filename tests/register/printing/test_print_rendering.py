"""The renderers on their own: the footer with a checkpoint (its verification URL as text and
QR code), and text that typst or HTML would read as markup printed as it was typed."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

from interventions.register.printing.content import (
    Block,
    Column,
    Cover,
    Heading,
    Lines,
    Row,
    TableEnd,
    TableStart,
)
from interventions.register.printing.coverage import Coverage, verification_url
from interventions.register.printing.html import render_html
from interventions.register.printing.pdf import render_pdf
from interventions.register.printing.signatures import Signature, shrink

HOSTILE = 'Salle "B" \\ #pagebreak() ]) [*x*] $1$ <b>gras</b> & ç'
URL = verification_url("https://registre.example.org/", "ck9fz2")
SIGNED = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)


async def _blocks() -> AsyncIterator[Block]:
    yield Cover(
        title="Safety register",
        organization="Org",
        site=HOSTILE,
        site_archived=True,
        period=(dt.date(2026, 1, 1), dt.date(2026, 6, 30)),
        as_of=dt.datetime(2026, 7, 1, tzinfo=dt.UTC),
        coverage=Coverage(42, "ab" * 32, "ck9fz2", SIGNED),
        verification_url=URL,
    )
    yield Heading(HOSTILE)
    yield TableStart((Column("A", "1fr"), Column("B", "3cm")))
    yield Row((Lines(("line one", HOSTILE), strong=True), Signature("sig-1", None)))
    yield Row(("x\ny", Signature("sig-2", shrink(b"not an image"), "signature image unreadable")))
    yield TableEnd()


def _text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "r.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(["pdftotext", "-raw", str(path), "-"], capture_output=True, check=True)
    return " ".join(done.stdout.decode("utf-8").split())


async def test_the_footer_names_the_checkpoint_and_markup_stays_text(tmp_path: Path) -> None:
    assert URL == "https://registre.example.org/register/v1/checkpoints/ck9fz2"
    text = _text(await render_pdf(_blocks(), SIGNED), tmp_path)
    assert text.count(HOSTILE) >= 3  # cover, heading, cell: no markup was interpreted
    assert f"{HOSTILE} (archived)" in text
    assert "checkpoint ck9fz2, signed 01/12/2026 10:00 UTC" in text
    assert "page 1 / 1" in text  # the QR code's height does not push the page number out
    assert "entry 42" in text
    assert "abababababababab" in text
    assert URL in text
    assert "signature not uploaded" in text
    assert "signature image unreadable" in text
    assert "not yet covered" not in text

    html = (await render_html(_blocks())).decode()
    assert "<b>gras</b>" not in html
    assert "&lt;b&gt;gras&lt;/b&gt;" in html
    assert f'<a href="{URL}">' in html
    assert "<svg" in html  # the QR code
