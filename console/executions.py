"""How the console shows replication executions: a row with its progress, and the chart of
bytes moved per execution (drawn on the server as SVG, like the GC page's)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from replication.models import Execution, Status

from .charts import Chart, bytes_chart

ACTIVE = (Status.PENDING, Status.RUNNING)
CHART_EXECUTIONS = 30
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


def executions_chart(executions: Iterable[Execution]) -> Chart:
    """Bars of bytes moved by ended execution, oldest left, coloured by outcome.

    ``executions`` come newest first (as execution_list gives them); running ones are left
    out until they end.
    """
    ended = [execution_row(e) for e in executions if e.status in COLORS]
    ended.reverse()
    return bytes_chart(
        ended,
        size=lambda row: row.bytes,
        color=lambda row: COLORS[Status(row.execution.status)],
        caption=lambda row: str(row.execution.pk),
        status=lambda row: row.execution.status,
        title=lambda row, size: (
            f"Execution {row.execution.pk} ({row.execution.policy.name}), "
            f"{row.execution.status}: {size}; {row.succeeded} succeeded, {row.failed} failed, "
            f"{row.skipped} skipped of {row.total}"
        ),
        href=lambda row: f"/administration/replications/executions/{row.execution.pk}/",
    )
