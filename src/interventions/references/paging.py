"""Which page of a list the client asks for (``page``, ``pageSize``), and the envelope that
answers it: every list endpoint of the service pages the same way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Query

from interventions.wire import ListEnvelope, Pagination

T = TypeVar("T")


@dataclass(frozen=True)
class Page:
    """Which page of a list: ``page`` from 1, ``size`` rows per page."""

    page: int
    size: int


async def _page(
    page: Annotated[int, Query(ge=1, le=1_000_000, description="From 1.")] = 1,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=100)] = 20,
) -> Page:
    return Page(page=page, size=page_size)


Paging = Annotated[Page, Depends(_page)]


def listed(page: Page, found: tuple[list[T], int]) -> ListEnvelope[T]:
    """The list envelope of one page of rows and how many there are in all."""
    items, total = found
    return ListEnvelope(
        data=items,
        total_count=total,
        pagination=Pagination(page=page.page, page_size=page.size),
    )
