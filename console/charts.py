"""Bar charts drawn on the server as SVG: bytes freed per GC run, bytes moved per replication
execution.  No script and no chart library: ``console/_bar_chart.html`` draws what
``bytes_chart`` lays out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from projects.sizes import size_format

CHART_HEIGHT, CHART_BAR, CHART_GAP = 120, 18, 6

T = TypeVar("T")


@dataclass
class Bar:
    """One bar, in SVG coordinates."""

    item: Any  # the run or execution it stands for
    x: int
    y: int
    height: int
    color: str
    caption: str  # under the bar: the run's number
    status: str
    title: str  # the tooltip
    href: str  # where a click goes; empty: nowhere


@dataclass
class Chart:
    bars: list[Bar]
    width: int
    height: int
    top: str  # the tallest bar's size, for the axis


def bytes_chart(
    items: Sequence[T],
    *,
    size: Callable[[T], int],
    color: Callable[[T], str],
    caption: Callable[[T], str],
    status: Callable[[T], str],
    title: Callable[[T, str], str],
    href: Callable[[T], str] = lambda item: "",
) -> Chart:
    """A bar per item (oldest first, left to right), heights by ``size`` against the largest.

    ``title`` gets the item and its size already formatted.  An item of size 0 still gets a
    hairline: it happened, and moved nothing.
    """
    most = max((size(item) for item in items), default=0)
    bars = []
    for index, item in enumerate(items):
        height = max(round(size(item) / most * CHART_HEIGHT) if most else 0, 1)
        bars.append(
            Bar(
                item=item,
                x=index * (CHART_BAR + CHART_GAP),
                y=CHART_HEIGHT - height,
                height=height,
                color=color(item),
                caption=caption(item),
                status=status(item),
                title=title(item, size_format(size(item))),
                href=href(item),
            )
        )
    width = max(len(bars) * (CHART_BAR + CHART_GAP), 1)
    return Chart(bars=bars, width=width, height=CHART_HEIGHT, top=size_format(most))
