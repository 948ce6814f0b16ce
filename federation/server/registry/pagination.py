"""Limit/offset pages of registry rows, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from federation.server.registry.errors import RegistryConfigError

T = TypeVar("T")
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing.

    Attributes
    ----------
    items
        The rows of this page.
    total
        Rows in the whole listing.
    limit, offset
        The page's size limit and position.
    """

    items: list[T]
    total: int
    limit: int
    offset: int

    @property
    def next_offset(self) -> int | None:
        """Offset of the next page, or ``None`` on the last page."""
        following = self.offset + len(self.items)
        return following if following < self.total else None


def check_page(limit: int, offset: int) -> None:
    """Refuse a page size outside ``1..MAX_PAGE_SIZE`` or a negative offset.

    Raises
    ------
    RegistryConfigError
        If ``limit`` or ``offset`` is out of range.
    """
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise RegistryConfigError(f"limit must be in 1..{MAX_PAGE_SIZE}, got {limit}")
    if offset < 0:
        raise RegistryConfigError(f"offset must be >= 0, got {offset}")


def fetch_page(session: Session, query: Select[Any], *, limit: int, offset: int) -> Page[Any]:
    """Run ``query`` (already ordered) for one page, counting the whole listing.

    The total comes with the page's rows (``count(*) over ()``), so a page costs one query; only
    a page past the end needs a second one to count.
    """
    check_page(limit, offset)
    counted = query.add_columns(func.count().over().label("page_total"))
    rows = session.execute(counted.limit(limit).offset(offset)).all()
    if rows:
        total = int(rows[0][-1])
    elif offset == 0:
        total = 0
    else:
        total = int(
            session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
        )
    items = [row[0] for row in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)
