"""The PDF/A-2b rendering, with typst (chosen by measurement: README "The printable register").

The blocks are written as typst source to a file as they come (strings are typst string
literals, so no data can be read as markup); signature images go beside it as small PNGs.
The compiler then lays the pages out: it needs the whole source, not Python objects.
Fonts are the ones the typst package embeds (Libertinus Serif, DejaVu Sans Mono), never the
system's, so the same data gives the same bytes on any machine."""

# ruff: noqa: E501  (the typst preamble reads best with its lines whole)
from __future__ import annotations

import datetime as dt
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TextIO

import anyio.to_thread
import segno
import typst

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
from interventions.register.printing.signatures import Signature

FONT = "Libertinus Serif"
MONO = "DejaVu Sans Mono"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def literal(text: str) -> str:
    """``text`` as a typst string literal."""
    text = _CONTROL.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


class TypstWriter:
    """Writes the blocks as typst source into ``folder``."""

    def __init__(self, folder: Path, out: TextIO) -> None:
        self.folder = folder
        self.out = out
        self.images: set[str] = set()

    def write(self, block: Block) -> None:
        if isinstance(block, Cover):
            self.cover(block)
        elif isinstance(block, Heading):
            self.out.write(f"#heading(level: {block.level}, {literal(block.text)})\n")
        elif isinstance(block, Note):
            self.out.write(f"#note({literal(block.text)})\n")
        elif isinstance(block, TableStart):
            columns = ", ".join(c.width for c in block.columns)
            titles = ", ".join(f"strong({literal(c.title)})" for c in block.columns)
            self.out.write(f"#table(columns: ({columns},), table.header(repeat: true, {titles}),\n")
        elif isinstance(block, Row):
            self.out.write(", ".join(self.cell(c) for c in block.cells) + ",\n")
        elif isinstance(block, TableEnd):
            self.out.write(")\n")
        elif isinstance(block, PageBreak):
            self.out.write("#pagebreak()\n")

    def cell(self, cell: Cell) -> str:
        if isinstance(cell, str):
            return literal(cell)
        if isinstance(cell, Lines):
            parts = [
                f"strong({literal(line)})" if cell.strong and i == 0 else literal(line)
                for i, line in enumerate(cell.lines)
            ]
            return "[" + "#linebreak()".join(f"#{p}" for p in parts) + "]"
        return self.signature(cell)

    def signature(self, signature: Signature) -> str:
        if signature.png is None:
            return f"missing({literal(signature.missing)})"
        name = f"{signature.key}.png"
        if name not in self.images:
            (self.folder / name).write_bytes(signature.png)
            self.images.add(name)
        return f'image("{name}", width: 2.7cm, height: 1.15cm, fit: "contain")'

    def cover(self, cover: Cover) -> None:
        c = cover.coverage
        url = cover.verification_url
        qr = "[]"
        if url:
            segno.make(url, error="m").save(
                str(self.folder / "qr.svg"), kind="svg", border=0, xmldecl=False
            )
            qr = 'image("qr.svg", width: 1.45cm)'
        archived = " (archived)" if cover.site_archived else ""
        self.out.write(
            f"""#set document(title: {literal(f"{cover.title} — {cover.site}")},
  author: {literal(cover.organization)})
#set text(font: "{FONT}", size: 9.5pt, lang: "fr")
#set par(justify: false)
#let note(body) = block(above: 6pt, below: 10pt, text(style: "italic", fill: luma(90), body))
#let missing(body) = text(size: 7.5pt, style: "italic", fill: luma(90), body)
#let mono(body) = text(font: "{MONO}", size: 6.8pt, body)
#set table(stroke: 0.4pt + luma(150), inset: (x: 4pt, y: 3.5pt), fill: (_, y) => if y == 0 {{ luma(228) }})
#show table: set text(size: 8.5pt)
#show heading.where(level: 1): it => block(above: 16pt, below: 8pt, text(size: 13pt, weight: "bold", it.body))
#show heading.where(level: 2): it => block(above: 11pt, below: 5pt, text(size: 10.5pt, weight: "bold", it.body))
#set page(
  paper: "a4",
  margin: (x: 1.6cm, top: 1.9cm, bottom: 2.9cm),
  header: context {{
    if counter(page).get().first() > 1 {{
      set text(size: 8pt, fill: luma(80))
      grid(columns: (1fr, auto), {literal(f"{cover.organization} — {cover.site}")}, {literal(f"{cover.title}, {period_text(cover)}")})
      line(length: 100%, stroke: 0.3pt + luma(150))
    }}
  }},
  footer: {{
    set text(size: 7.5pt)
    line(length: 100%, stroke: 0.3pt + luma(150))
    grid(columns: (1fr, auto), column-gutter: 10pt,
      [
        #strong("Journal position:") #{literal(f"entry {c.seq}")} #mono({literal(c.hash[:16])}) \\
        #strong("Covered by:") #{literal(checkpoint_text(cover))} \\
        #strong("Verify:") #mono({literal(url or NOT_COVERED)}) \\
        #context [page #counter(page).display() / #counter(page).final().first()]
      ],
      {qr},
    )
  }},
)

#align(center)[
  #text(size: 19pt, weight: "bold", {literal(cover.title)}) \\
  #v(2pt)
  #text(size: 10pt, style: "italic", "Registre de sécurité — Code de la construction et de l'habitation, art. R*143-44")
]
#v(6pt)
#table(columns: (4.2cm, 1fr), stroke: 0.4pt + luma(150), fill: (x, _) => if x == 0 {{ luma(238) }},
  strong("Organisation"), {literal(cover.organization)},
  strong("Site"), {literal(cover.site + archived)},
  strong("Period"), {literal(period_text(cover))},
  strong("Situation as of"), {literal(f"{cover.as_of:%d/%m/%Y %H:%M} UTC")},
  strong("Journal position"), [#{literal(f"entry {c.seq}, hash ")} #mono({literal(c.hash)})],
  strong("Checkpoint"), {literal(checkpoint_text(cover))},
)
"""
        )


async def render_pdf(blocks: AsyncIterator[Block], timestamp: dt.datetime) -> bytes:
    """The blocks as a PDF/A-2b document; ``timestamp`` is its creation date (fixed by the
    data, so that the same data gives the same bytes)."""
    with tempfile.TemporaryDirectory(prefix="register-") as name:
        folder = Path(name)
        source = folder / "register.typ"
        with open(source, "w", encoding="utf-8") as out:  # noqa: ASYNC230 (local temp file)
            writer = TypstWriter(folder, out)
            async for block in blocks:
                writer.write(block)

        def compile_() -> bytes:
            pdf = typst.compile(
                str(source),
                root=str(folder),
                font_paths=[],
                ignore_system_fonts=True,
                pdf_standards="a-2b",
                timestamp=timestamp,
            )
            assert isinstance(pdf, bytes)
            return pdf

        return await anyio.to_thread.run_sync(compile_)
