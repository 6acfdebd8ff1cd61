"""The parts of a long printout joined into one PDF/A-2b document, with pikepdf (qpdf).

Run in the compiler's child process (``compile_worker.py``), never in the service's worker.
The first part gives the document its catalogue: the XMP metadata typst wrote (PDF/A-2b
identification, title, dates fixed by the data), the output intent, the language. Every
part's pages follow in order, each keeping its own resources (fonts embedded as the part's
subsets), and the total of "page N / total" is laid over each page from the stamp document.
What depends on the whole is written again: the page count in the XMP metadata and the
outline (bookmarks), built from the parts' outlines and the heading levels the writer noted.

The bytes are a function of the parts': qpdf writes objects in a fixed order and its
``deterministic_id`` derives the trailer's /ID from the content (no clock, no random)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pikepdf

PAGE_COUNT = pikepdf.Name("/PageCount")
_NPAGES = re.compile(rb"<xmpTPg:NPages>\d+</xmpTPg:NPages>")


@dataclass(frozen=True)
class Bookmark:
    title: str
    level: int
    page: int  # index in the joined document
    left: float | None
    top: float | None


class Joined:
    """The document being joined: ``append`` each part in order, then ``write``. The parts
    stay open until then (their objects are copied when the document is written)."""

    def __init__(self, first: Path, levels: list[int]) -> None:
        self.pdf = pikepdf.open(first)
        self.others: list[pikepdf.Pdf] = []
        self.bookmarks = _bookmarks(self.pdf, levels, 0)

    def append(self, path: Path, levels: list[int]) -> None:
        part = pikepdf.open(path)
        self.others.append(part)
        self.bookmarks += _bookmarks(part, levels, len(self.pdf.pages))
        self.pdf.pages.extend(part.pages)

    def write(self, stamp: Path, output: Path) -> None:
        """Lays ``stamp``'s one page (the page count) over every page, writes to ``output``."""
        with pikepdf.open(stamp) as stamped:
            if len(stamped.pages) != 1:
                raise ValueError(f"the page count's document has {len(stamped.pages)} pages")
            # One drawing of the count, referred to by every page.
            count = self.pdf.copy_foreign(stamped.pages[0].as_form_xobject())
            for page in self.pdf.pages:
                _lay_over(page, count)
            _outline(self.pdf, self.bookmarks)
            _page_count(self.pdf, len(self.pdf.pages))
            self.pdf.save(output, deterministic_id=True, fix_metadata_version=False)

    def close(self) -> None:
        for part in [self.pdf, *self.others]:
            part.close()


def _lay_over(page: pikepdf.Page, drawing: pikepdf.Object) -> None:
    """Draws ``drawing`` (a form of the page's size) over ``page``, after its content and
    outside its graphics state. Not ``Page.add_overlay``: that names the resource at random
    (the same data would not give the same bytes) and rewrites the page's content."""
    name = page.add_resource(drawing, pikepdf.Name.XObject, PAGE_COUNT)
    page.contents_add(b"q\n", prepend=True)
    page.contents_add(b"Q\nq " + bytes(name) + b" Do Q\n")


def _bookmarks(part: pikepdf.Pdf, levels: list[int], offset: int) -> list[Bookmark]:
    """The part's outline items in document order, as bookmarks of the joined document."""
    found: list[Bookmark] = []
    outlines = part.Root.get("/Outlines")
    pending = [outlines.get("/First")] if outlines is not None else []
    while pending:
        item = pending.pop()
        if item is None:
            continue
        # Depth first, in order: this item, its children, then its next sibling.
        pending.append(item.get("/Next"))
        pending.append(item.get("/First"))
        dest = item.Dest
        found.append(
            Bookmark(
                str(item.Title),
                0,
                offset + part.pages.index(pikepdf.Page(dest[0])),
                _number(dest[2]),
                _number(dest[3]),
            )
        )
    if len(found) != len(levels):
        raise ValueError(f"{len(found)} outline items for {len(levels)} headings in a part")
    return [
        Bookmark(b.title, level, b.page, b.left, b.top)
        for b, level in zip(found, levels, strict=True)
    ]


def _number(value: pikepdf.Object) -> float | None:
    return None if value is None or isinstance(value, pikepdf.Name) else float(value)


def _outline(pdf: pikepdf.Pdf, bookmarks: list[Bookmark]) -> None:
    """The outline of the whole document: each level-2 heading under the level-1 before it."""
    if "/Outlines" in pdf.Root:
        del pdf.Root.Outlines
    with pdf.open_outline() as outline:
        parent: pikepdf.OutlineItem | None = None
        for b in bookmarks:
            item = pikepdf.OutlineItem(b.title, b.page, "XYZ", left=b.left, top=b.top, zoom=0)
            if b.level > 1 and parent is not None:
                parent.children.append(item)
            else:
                outline.root.append(item)
                parent = item


def _page_count(pdf: pikepdf.Pdf, pages: int) -> None:
    """The whole document's page count in the XMP metadata, the rest of it as typst wrote it
    (no re-serialisation: its PDF/A extension schemas stay byte for byte)."""
    metadata = pdf.Root.Metadata
    xmp, found = _NPAGES.subn(
        f"<xmpTPg:NPages>{pages}</xmpTPg:NPages>".encode(), metadata.read_bytes()
    )
    if found != 1:
        raise ValueError("the first part's metadata has no page count")
    metadata.write(xmp)
