"""How the console shows replication executions: a row with its progress, and the chart of
bytes moved per execution (drawn on the server as SVG, like the GC page's)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from projects.sizes import size_format
from replication.models import Execution, Status

ACTIVE = (Status.PENDING, Status.RUNNING)
CHART_EXECUTIONS = 30
CHART_HEIGHT, CHART_BAR, CHART_GAP = 120, 18, 6
COLORS = {
    Status.SUCCEEDED: "#1f6fb2",
    Status.FAILED: "#b42318",
    Status.CANCELLED: "#98a2b3",
}


@dataclass
class ExecutionRow:
    """An execution with the counts to show: its tasks' while it runs (the execution's own
    counters are written when it ends), its own afterwards."""

    execution: Execution
    succeeded: int
    failed: int
    skipped: int
    total: int
    bytes: int

    @property
    def active(self) -> bool:
        return self.execution.status in ACTIVE

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.skipped

    @property
    def percent(self) -> int:
        return round(self._share(self.done))

    @property
    def widths(self) -> dict[str, float]:
        """Shares of the progress bar (percent) by outcome; the rest is still to do."""
        return {
            "succeeded": self._share(self.succeeded),
            "failed": self._share(self.failed),
            "skipped": self._share(self.skipped),
        }

    def _share(self, count: int) -> float:
        return 100 * min(count, self.total) / self.total if self.total else 0.0


def execution_row(execution: Execution) -> ExecutionRow:
    """A row from an execution annotated by replication.selectors.execution_list."""
    if execution.status in ACTIVE:
        return ExecutionRow(
            execution,
            succeeded=execution.succeeded_count,  # type: ignore[attr-defined]
            failed=execution.failed_count,  # type: ignore[attr-defined]
            skipped=execution.skipped_count,  # type: ignore[attr-defined]
            total=max(execution.total, execution.task_count),  # type: ignore[attr-defined]
            bytes=execution.bytes_moved,  # type: ignore[attr-defined]
        )
    return ExecutionRow(
        execution,
        succeeded=execution.succeeded,
        failed=execution.failed,
        skipped=execution.skipped,
        total=execution.total,
        bytes=execution.bytes,
    )


@dataclass
class Bar:
    """One execution's bar in the chart (SVG coordinates)."""

    row: ExecutionRow
    x: int
    y: int
    height: int
    color: str
    label: str


@dataclass
class Chart:
    bars: list[Bar]
    width: int
    height: int
    top: str  # the tallest bar's size, for the axis


def bytes_chart(executions: Iterable[Execution]) -> Chart:
    """Bars of bytes moved by ended execution, oldest left, coloured by outcome.

    ``executions`` come newest first (as execution_list gives them); running ones are left
    out until they end.
    """
    ended = [execution_row(e) for e in executions if e.status in COLORS]
    ended.reverse()
    most = max((row.bytes for row in ended), default=0)
    bars = []
    for index, row in enumerate(ended):
        height = round(row.bytes / most * CHART_HEIGHT) if most else 0
        height = max(height, 1)  # a hairline: the execution ran, and moved nothing
        bars.append(
            Bar(
                row=row,
                x=index * (CHART_BAR + CHART_GAP),
                y=CHART_HEIGHT - height,
                height=height,
                color=COLORS[Status(row.execution.status)],
                label=size_format(row.bytes),
            )
        )
    width = max(len(bars) * (CHART_BAR + CHART_GAP), 1)
    return Chart(bars=bars, width=width, height=CHART_HEIGHT, top=size_format(most))
