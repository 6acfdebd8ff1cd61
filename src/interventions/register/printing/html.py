"""The HTML rendering of the same blocks: one self-contained page (styles inline, signatures
and the QR code as data), printable from a browser (``@page`` rules, repeated table heads)."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from html import escape
from io import StringIO
from pathlib import Path
from typing import TextIO

from interventions.register.printing.content import (
    NOT_COVERED,
    Block,
    Cell,
    Cover,
    Heading,
    Lines,
    Note,
    PageBreak,
    Row,
    TableEnd,
    TableStart,
    checkpoint_text,
    period_text,
)

STYLE = """
@page { size: A4; margin: 1.6cm 1.6cm 2cm; }
body { font-family: "Libertinus Serif", "DejaVu Serif", Georgia, serif; font-size: 10pt;
  color: #111; max-width: 19cm; margin: 1em auto; }
h1.title { text-align: center; font-size: 19pt; margin-bottom: 0; }
p.subtitle { text-align: center; font-style: italic; margin-top: 2px; }
h2 { font-size: 13pt; margin: 1.4em 0 .5em; }
h3 { font-size: 10.5pt; margin: 1em 0 .4em; }
table { border-collapse: collapse; width: 100%; font-size: 8.5pt; margin-bottom: .6em; }
th, td { border: 0.5pt solid #999; padding: 3px 4px; vertical-align: top; text-align: left; }
thead th { background: #e4e4e4; }
thead { display: table-header-group; }
tr { break-inside: avoid; }
table.facts th { width: 4.2cm; background: #eee; }
.note { font-style: italic; color: #555; }
.missing { font-style: italic; color: #555; font-size: 7.5pt; }
.mono { font-family: "DejaVu Sans Mono", monospace; font-size: 7pt; }
img.signature { max-width: 2.7cm; max-height: 1.15cm; }
footer { border-top: 0.5pt solid #999; margin-top: 2em; padding-top: .5em; font-size: 8pt;
  display: flex; justify-content: space-between; gap: 1em; }
.pagebreak { break-after: page; }
"""
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]")


def _e(text: str) -> str:
    return escape(_CONTROL.sub(" ", text))


class HtmlWriter:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.footer = ""

    def write(self, block: Block) -> None:
        w = self.out.write
        if isinstance(block, Cover):
            self.cover(block)
        elif isinstance(block, Heading):
            tag = "h2" if block.level == 1 else "h3"
            w(f"<{tag}>{_e(block.text)}</{tag}>\n")
        elif isinstance(block, Note):
            w(f'<p class="note">{_e(block.text)}</p>\n')
        elif isinstance(block, TableStart):
            heads = "".join(f"<th>{_e(c.title)}</th>" for c in block.columns)
            w(f"<table><thead><tr>{heads}</tr></thead><tbody>\n")
        elif isinstance(block, Row):
            w("<tr>" + "".join(f"<td>{self.cell(c)}</td>" for c in block.cells) + "</tr>\n")
        elif isinstance(block, TableEnd):
            w("</tbody></table>\n")
        elif isinstance(block, PageBreak):
            w(self.footer + '<div class="pagebreak"></div>\n')

    def cell(self, cell: Cell) -> str:
        if isinstance(cell, str):
            return _e(cell)
        if isinstance(cell, Lines):
            lines = [_e(line) for line in cell.lines]
            if cell.strong and lines:
                lines[0] = f"<strong>{lines[0]}</strong>"
            return "<br>".join(lines)
        if cell.png is None:
            return f'<span class="missing">{_e(cell.missing)}</span>'
        data = base64.b64encode(cell.png).decode("ascii")
        return f'<img class="signature" alt="signature" src="data:image/png;base64,{data}">'

    def cover(self, cover: Cover) -> None:
        import segno  # imported when a register is printed, not in every serving process

        c = cover.coverage
        url = cover.verification_url
        archived = " (archived)" if cover.site_archived else ""
        qr = segno.make(url, error="m").svg_inline(scale=2, border=0) if url else ""
        link = f'<a href="{_e(url)}">{_e(url)}</a>' if url else _e(NOT_COVERED)
        self.footer = (
            f"<footer><div><strong>Journal position:</strong> entry {c.seq} "
            f'<span class="mono">{_e(c.hash[:16])}</span><br>'
            f"<strong>Covered by:</strong> {_e(checkpoint_text(cover))}<br>"
            f'<strong>Verify:</strong> <span class="mono">{link}</span></div>'
            f"<div>{qr}</div></footer>\n"
        )
        title = f"{cover.title} — {cover.site}"
        self.out.write(
            f'<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8">'
            f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>\n"
            f'<h1 class="title">{_e(cover.title)}</h1>\n'
            '<p class="subtitle">Registre de sécurité — Code de la construction et de '
            "l'habitation, art. R*143-44</p>\n"
            '<table class="facts"><tbody>\n'
            f"<tr><th>Organisation</th><td>{_e(cover.organization)}</td></tr>\n"
            f"<tr><th>Site</th><td>{_e(cover.site + archived)}</td></tr>\n"
            f"<tr><th>Period</th><td>{_e(period_text(cover))}</td></tr>\n"
            f"<tr><th>Situation as of</th><td>{cover.as_of:%d/%m/%Y %H:%M} UTC</td></tr>\n"
            f"<tr><th>Journal position</th><td>entry {c.seq}, hash "
            f'<span class="mono">{_e(c.hash)}</span></td></tr>\n'
            f"<tr><th>Checkpoint</th><td>{_e(checkpoint_text(cover))}</td></tr>\n"
            "</tbody></table>\n"
        )


async def _write(blocks: AsyncIterator[Block], out: TextIO) -> None:
    writer = HtmlWriter(out)
    async for block in blocks:
        writer.write(block)
    out.write(writer.footer + "</body></html>\n")


async def render_html(blocks: AsyncIterator[Block]) -> bytes:
    """The page, whole, in memory (small documents and tests)."""
    out = StringIO()
    await _write(blocks, out)
    return out.getvalue().encode("utf-8")


async def render_html_file(folder: Path, blocks: AsyncIterator[Block]) -> Path:
    """The page written to ``folder`` as the blocks come (a batch of rows and their
    signatures at a time): the worker never holds the whole document, which the route sends
    from the file, as the PDF."""
    path = folder / "register.html"
    with open(path, "w", encoding="utf-8") as out:  # noqa: ASYNC230 (local temp file)
        await _write(blocks, out)
    return path
