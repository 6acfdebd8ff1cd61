"""The printout as typst source, in parts (typst chosen by measurement: README "The printable
register"; compiled and joined by ``pdf.py``).

The blocks are written as typst source as they come (strings are typst string literals, so no
data can be read as markup); signature images go beside it as small PNGs, one file of them
per part. The source is cut into parts of at most ``rows`` table rows, at a row boundary (or
between tables): a table that goes on in the next part is opened again there, so its header
repeats as it would on a new page. Each part is laid out on its own (``pdf.py``), so the
compiler holds a few hundred rows at a time, never the whole register.

Page numbers run on across the parts: a part starts at the page number the compiler passes
it (``sys.inputs.start``). The total is known only once the last part is laid out, so in a
document of several parts each part prints "page N /" and leaves the total's box empty
(``numbers: "hidden"``); the total comes from a one-page document drawing that box alone
(``stamp_source``, ``numbers: "stamp"``), laid over every page when the parts are joined. The
line is right-aligned and the total's box has a fixed width, so the box is at the same place
on every page whatever N: one drawing of the total serves them all, and its cost does not grow
with the document. A document of one part (the commission pack, any register of fewer rows)
prints the whole line itself (``numbers: "whole"``), in the same place.

Fonts are the ones the typst package embeds (Libertinus Serif, DejaVu Sans Mono), never the
system's, so the same data gives the same bytes on any machine."""

# ruff: noqa: E501  (the typst preamble reads best with its lines whole)
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TextIO

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
# Rows per part: a compiler's peak memory follows its part's size (~50 MiB for a page, 80 for
# 125 checks with their signatures, 105 for 250, 150 for 500; 267 for 1 000 in one piece),
# the work added by the number of parts (a process, the fonts embedded again) about 0.1 s of
# CPU each. Measured in bench/README.md "The printable register".
PART_ROWS = 250
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def literal(text: str) -> str:
    """``text`` as a typst string literal."""
    text = _CONTROL.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


@dataclass
class Part:
    """One typst file of the document, and the levels of the headings it holds (in order:
    the joined document's outline is built from them)."""

    path: Path
    headings: list[int] = field(default_factory=list)


class TypstWriter:
    """Writes the blocks as typst source into ``folder``, one file per part."""

    def __init__(self, folder: Path, rows: int = PART_ROWS) -> None:
        self.folder = folder
        self.rows = rows
        self.parts: list[Part] = []
        self.preamble = ""
        self.out: TextIO | None = None
        # The part's signature images, one after the other in one file that typst reads once
        # (slices of it are the images): creating a file per image cost 1.2 ms each in this
        # machine's /tmp (0.03 ms in /var/tmp), 1.2 s of CPU for 1 000 checks.
        self.images: BinaryIO | None = None
        self.placed: dict[str, tuple[int, int]] = {}  # key -> offset and length in it
        self.table: TableStart | None = None  # the table open at this point, if any
        self.rows_in_part = 0

    def write(self, block: Block) -> Part | None:
        """Writes ``block``; returns the part it completed, if it had to start another."""
        done = None
        # A full part ends before the next row, or before the next block between tables (so
        # that a heading and its table start together). Never after the last block: a part
        # always holds something, and a document of one part is known as such.
        if self.rows_in_part >= self.rows and (isinstance(block, Row) or self.table is None):
            done = self._next_part()
        out = self._out()
        if isinstance(block, Cover):
            self.preamble = preamble(self.folder, block)
            self._start(out)
            out.write(title(block))
        elif isinstance(block, Heading):
            self.parts[-1].headings.append(block.level)
            out.write(f"#heading(level: {block.level}, {literal(block.text)})\n")
        elif isinstance(block, Note):
            out.write(f"#note({literal(block.text)})\n")
        elif isinstance(block, TableStart):
            self.table = block
            out.write(table_start(block))
        elif isinstance(block, Row):
            self.rows_in_part += 1
            out.write(", ".join(self.cell(c) for c in block.cells) + ",\n")
        elif isinstance(block, TableEnd):
            self.table = None
            out.write(")\n")
        elif isinstance(block, PageBreak):
            out.write("#pagebreak()\n")
        return done

    def close(self) -> Part:
        """Ends the last part and returns it."""
        self._out()
        self.abandon()
        return self.parts[-1]

    def abandon(self) -> None:
        """Closes the part being written, if any (at its end, or when the document failed)."""
        for file in (self.out, self.images):
            if file is not None:
                file.close()
        self.out = self.images = None

    def _out(self) -> TextIO:
        if self.out is None:
            path = self.folder / f"part-{len(self.parts) + 1:04d}.typ"
            # Closed by close() or abandon().
            self.out = open(path, "w", encoding="utf-8")  # noqa: SIM115
            self.images = open(path.with_suffix(".images"), "wb")  # noqa: SIM115
            self.placed = {}
            self.parts.append(Part(path))
            self.rows_in_part = 0
        return self.out

    def _start(self, out: TextIO) -> None:
        """The part's first lines: the settings, and its images' file read once."""
        out.write(self.preamble)
        name = self.parts[-1].path.with_suffix(".images").name
        out.write(f'#let signatures = read("{name}", encoding: none)\n')

    def _next_part(self) -> Part:
        """Ends the current part and starts the next one, in the same table if one is open."""
        assert self.out is not None
        if self.table is not None:
            self.out.write(")\n")
        done = self.close()
        out = self._out()
        self._start(out)
        if self.table is not None:
            out.write(table_start(self.table))
        return done

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
        assert self.images is not None
        if signature.key not in self.placed:
            self.placed[signature.key] = (self.images.tell(), len(signature.png))
            self.images.write(signature.png)
        start, length = self.placed[signature.key]
        return (
            f"image(signatures.slice({start}, {start + length}),"
            ' width: 2.7cm, height: 1.15cm, fit: "contain")'
        )


def table_start(block: TableStart) -> str:
    columns = ", ".join(c.width for c in block.columns)
    titles = ", ".join(f"strong({literal(c.title)})" for c in block.columns)
    return f"#table(columns: ({columns},), table.header(repeat: true, {titles}),\n"


def preamble(folder: Path, cover: Cover) -> str:
    """The settings every part starts with: fonts, page, header and footer.

    The compiler's inputs say where the part's pages start (``start``) and how the footer's
    page line is drawn (``numbers``): "whole" (the part is the document: "page N / total"),
    "hidden" ("page N /", the total's box left empty), "stamp" (the total's box alone, with
    ``total``; nothing else drawn, everything laid out as in the parts)."""
    c = cover.coverage
    url = cover.verification_url
    qr = "[]"
    if url:
        import segno  # imported when a register is printed, not in every serving process

        segno.make(url, error="m").save(str(folder / "qr.svg"), kind="svg", border=0, xmldecl=False)
        qr = 'image("qr.svg", width: 1.45cm)'
    return f"""#let numbers = sys.inputs.at("numbers", default: "whole")
#let others(body) = if numbers == "stamp" {{ hide(body) }} else {{ body }}
#let page-line = context {{
  let total = if numbers == "whole" {{ str(counter(page).final().first()) }} else if numbers == "stamp" {{ sys.inputs.total }} else {{ [] }}
  h(1fr)
  others[page #counter(page).display() /]
  [ ]
  box(width: 2.6em, total)
}}
#set document(title: {literal(f"{cover.title} — {cover.site}")},
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
    if numbers != "stamp" and counter(page).get().first() > 1 {{
      set text(size: 8pt, fill: luma(80))
      grid(columns: (1fr, auto), {literal(f"{cover.organization} — {cover.site}")}, {literal(f"{cover.title}, {period_text(cover)}")})
      line(length: 100%, stroke: 0.3pt + luma(150))
    }}
  }},
  footer: {{
    set text(size: 7.5pt)
    others(line(length: 100%, stroke: 0.3pt + luma(150)))
    grid(columns: (1fr, auto), column-gutter: 10pt,
      [
        #others[#strong("Journal position:") #{literal(f"entry {c.seq}")} #mono({literal(c.hash[:16])}) \\
        #strong("Covered by:") #{literal(checkpoint_text(cover))} \\
        #strong("Verify:") #mono({literal(url or NOT_COVERED)})] \\
        #page-line
      ],
      others({qr}),
    )
  }},
)
#counter(page).update(int(sys.inputs.at("start", default: "1")))
"""


def title(cover: Cover) -> str:
    """The first page's title block."""
    c = cover.coverage
    archived = " (archived)" if cover.site_archived else ""
    return f"""
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


def stamp_source(writer: TypstWriter) -> Path:
    """The document that draws the page count of a document of several parts: one page, the
    parts' footer laid out on it, the total's box alone drawn (its input ``total``)."""
    path = writer.folder / "stamp.typ"
    path.write_text(writer.preamble, encoding="utf-8")
    return path
