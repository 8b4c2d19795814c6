"""Render the benchmark results of scripts/bench.sh as the Markdown table of docs/performance.md.

python3 scripts/bench_table.py OUT_DIR
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

# (figure, unit, target ratio to the reference, True if higher is better)
ROWS = [
    ("upload_chunked_throughput", "MB/s", 1.0, True),
    ("blob_get_throughput", "MB/s", 1.0, True),
    ("push_big_throughput", "MB/s", 1.0, True),
    ("pull_big_throughput", "MB/s", 1.0, True),
    ("manifest_get_rate", "req/s", 0.5, True),
    ("manifest_head_rate", "req/s", 0.5, True),
    ("push_small_total", "s", 1.2, False),
    ("tags_list_latency", "ms", None, False),
    ("registry_peak_rss", "MiB", 2.0, False),
]


def figures(path: Path, section: str | None = None) -> dict[str, float]:
    """name -> value from bench.py output (the first section, or the one named)."""
    values: dict[str, float] = {}
    active = section is None
    for line in path.read_text().splitlines():
        if line.startswith("== "):
            if values and section is None:
                break
            active = section is not None and section in line
            continue
        if active and ": " in line and not line.startswith(" "):
            name, rest = line.split(": ", 1)
            with contextlib.suppress(ValueError):
                values[name] = float(rest.split()[0])
    return values


def verdict(ratio: float, target: float | None, higher_better: bool) -> str:
    if target is None:
        return ""
    met = ratio >= target if higher_better else ratio <= target
    # Run-to-run noise on this machine is several percent: within 5 % is a tie.
    tie = abs(ratio - target) <= 0.05 * target
    sign = "≥" if higher_better else "≤"
    word = "met" if met else "tie (within 5 %)" if tie else "missed"
    return f"{word} ({sign} {target:g}x)"


def table(reference: dict[str, float], columns: list[tuple[str, dict[str, float]]]) -> str:
    names = " | ".join(f"{n} | ratio" for n, _ in columns)
    head = f"| figure | reference | {names} | target |"
    rule = "|" + "---|" * (3 + 2 * len(columns))
    lines = [head, rule]
    for name, unit, target, higher in ROWS:
        if name not in reference:
            continue
        cells = [f"`{name}` ({unit})", f"{reference[name]:.4g}"]
        first_ratio = None
        for _, values in columns:
            if name in values:
                ratio = values[name] / reference[name]
                first_ratio = ratio if first_ratio is None else first_ratio
                cells += [f"{values[name]:.4g}", f"{ratio:.2f}x"]
            else:
                cells += ["-", "-"]
        cells.append(verdict(first_ratio, target, higher) if first_ratio is not None else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    out = Path(sys.argv[1])
    reference = figures(out / "reference.txt", "docker-registry")
    columns = [
        ("embedded", figures(out / "hp-embedded.txt")),
        ("PostgreSQL", figures(out / "hp-pg.txt")),
        ("PostgreSQL, no fsync", figures(out / "hp-nofsync.txt")),
    ]
    print(f"Measured {(out / 'date').read_text().strip()}, 3 runs each (medians).\n")
    print(table(reference, columns))
    print("\nMemory as the blob grows (one 2 GiB blob uploaded, then read by wrk):\n")
    print(table(figures(out / "ref-2g.txt"), [("embedded", figures(out / "hp-2g.txt"))]))


if __name__ == "__main__":
    main()
