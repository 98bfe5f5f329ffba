"""From raw records to figures: per-record metrics, medians, pair-by-pair ratios to the bare loop,
the targets, the stdout table and the Markdown report."""

from __future__ import annotations

import statistics
from typing import Any, NamedTuple

from .plan import HEAVY

__all__ = ["ROWS", "Row", "markdown", "summarise", "table"]

FLOOR = "bare"
_MIB = 1024 * 1024


class Row(NamedTuple):
    workload: str
    metric: str
    label: str
    target: float | None  # the highest ratio (or difference) to the bare loop this SDK may show
    compare: str = "ratio"  # or "diff": the figure minus the bare loop's, in its own unit


ROWS = [
    Row("seq", "cpu_us", "sequential small: CPU us/request", 1.05),
    Row("seq", "wall_us", "sequential small: wall us/request", None),
    Row("conc", "cpu_us", "concurrency 64, long run: CPU us/request", 1.05),
    Row("conc", "wall_us", "concurrency 64, long run: wall us/request", None),
    Row("burst", "cpu_us", "burst, 320 over 64 conns, fresh client: CPU us/request", 1.10),
    Row("burst", "wall_us", "burst, 320 over 64 conns, fresh client: wall us/request", None),
    Row("stream", "cpu_us", "stream, 1 write/chunk: CPU us/chunk", 1.05),
    Row("stream", "wall_us", "stream, 1 write/chunk: wall us/chunk", None),
    Row("stream-batched", "cpu_us", "stream, batched + keep-alive: CPU us/chunk", 1.25),
    Row("delta-4", "cpu_us", "stream, 4 B deltas: CPU us/chunk", None),
    Row("delta-256", "cpu_us", "stream, 256 B deltas: CPU us/chunk", None),
    Row("delta-4k", "cpu_us", "stream, 4 KiB deltas: CPU us/chunk", 1.15),
    Row("large", "cpu_us", "large body (24 KB): CPU us/request", None),
    Row("body-1k", "cpu_us", "1 KB body: CPU us/request", None),
    Row("body-100k", "cpu_us", "100 KB body: CPU us/request", 1.10),
    Row("body-1m", "cpu_us", "1 MB body: CPU us/request", None),
    Row("open-512", "rss_per_stream_kib", "512 open streams: RSS KiB/stream", None),
    # Issue 23 (performance round two) set these two: RSS per open stream <= 1.15x, TTFT <= +50 us.
    Row("open-2000", "rss_per_stream_kib", "2000 open streams: RSS KiB/stream", 1.15),
    Row("open-2000", "peak_rss_mib", "2000 open streams: peak RSS MiB", None),
    Row("open-2000", "cpu_us", "2000 open streams: CPU us/stream", None),
    Row("ttft", "ttft_us", "time to first token: wall us (median)", 50.0, "diff"),
    Row("import", "net_ms", "cold import: ms net of python", 1.15),
    Row("import", "rss_mib", "cold import: RSS MiB", 1.1),
    Row("first", "net_ms", "import + first request: ms net of python", None),
]
PER_CHUNK = {"stream"}  # kinds of job whose CPU and wall are per chunk, not per request


def metrics(record: dict[str, Any]) -> dict[str, float]:
    """The figures of one record (one client, one workload, one round)."""
    workload = record["workload"]
    if workload in ("import", "first"):
        out = {"net_ms": (record["wall"] - record["python_wall"]) * 1000, "rss_mib": record["maxrss"] / _MIB}
        out["cpu_ms"] = record["cpu"] * 1000
        return out
    kind = record.get("kind") or ("stream" if workload.startswith("stream") else workload)  # older runs
    per = record["chunks"] if kind in PER_CHUNK else record["requests"]
    out = {"cpu_us": record["cpu"] / per * 1e6, "wall_us": record["wall"] / per * 1e6}
    if kind == "open":
        out["rss_per_stream_kib"] = (record["rss_open"] - record["rss_base"]) / record["count"] / 1024
        out["peak_rss_mib"] = record["peak_rss"] / _MIB
    if kind == "ttft":
        out["ttft_us"] = record["ttft_us"]
    return out


def summarise(records: list[dict[str, Any]], clients: list[str]) -> list[dict[str, Any]]:
    """For each row: per client the median of the metric and the median of its ratio to (or, for a
    "diff" row, difference from) the bare loop's figure from the same round, pair by pair, and
    whether this SDK meets the target."""
    by_key: dict[tuple[str, int], dict[str, dict[str, float]]] = {}
    for record in records:
        if "error" in record:
            continue
        by_key.setdefault((record["workload"], record["round"]), {})[record["client"]] = metrics(record)
    summary = []
    for row in ROWS:
        cells: dict[str, dict[str, Any]] = {}
        for client in clients:
            values, ratios, diffs = [], [], []
            for (workload, _), per_client in sorted(by_key.items()):
                if workload != row.workload or client not in per_client:
                    continue
                value = per_client[client].get(row.metric)
                if value is None:
                    continue
                values.append(value)
                floor = per_client.get(FLOOR, {}).get(row.metric)
                if floor:
                    ratios.append(value / floor)
                    diffs.append(value - floor)
            if values:
                cells[client] = {
                    "median": statistics.median(values),
                    "ratio": statistics.median(ratios) if ratios else None,
                    "diff": statistics.median(diffs) if diffs else None,
                    "n": len(values),
                }
        if not cells:
            continue  # a workload not run
        versus = cells.get("atoma", {}).get(row.compare)
        met = None if row.target is None or versus is None else versus <= row.target
        summary.append({**row._asdict(), "clients": cells, "met": met})
    return summary


def _figure(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 10 else f"{value:.1f}"


def _versus(value: float, compare: str) -> str:
    """A ratio as `1.05x`, a difference as `+12.3` (in the row's own unit)."""
    return f"{value:.2f}x" if compare == "ratio" else f"{value:+.1f}"


def _cell(cell: dict[str, Any] | None, compare: str | None) -> str:
    """The median figure and, unless `compare` is None, its ratio to or difference from the floor."""
    if cell is None:
        return "-"
    text = _figure(cell["median"])
    if compare is not None and cell[compare] is not None:
        text += f" ({_versus(cell[compare], compare)})"
    return text


def _cells(row: dict[str, Any], clients: list[str]) -> list[str]:
    return [_cell(row["clients"].get(c), None if c == FLOOR else row["compare"]) for c in clients]


def _verdict(row: dict[str, Any]) -> str:
    if row["target"] is None:
        return ""
    mark = {True: "met", False: "MISSED", None: "?"}[row["met"]]
    return f"<= {_versus(row['target'], row['compare'])} {mark}"


def table(summary: list[dict[str, Any]], clients: list[str]) -> str:
    """Plain-text table: median figure and, in brackets, the median ratio to the bare loop."""
    head = ["figure (median; ratio to bare)", *clients, "atoma target"]
    lines = [head]
    for row in summary:
        lines.append([row["label"], *_cells(row, clients), _verdict(row)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for n, line in enumerate(lines):
        out.append(
            "  ".join(
                cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(line)
            )
        )
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _slow_note(config: dict[str, Any], clients: list[str]) -> list[str]:
    """Which clients ran smaller counts or fewer rounds, so a reader knows where figures are thinner."""
    slow = [f"{c} 1/{n}" for c, n in config.get("slow", {}).items() if c in clients]
    if not slow:
        return []
    heavy, rounds = ", ".join(sorted(HEAVY)), config["slow_rounds"]
    where = f"in only the first {rounds} of {config['rounds']} rounds" if rounds else "not at all"
    return [
        f"To keep the run short, the slow clients ran part of every count ({', '.join(slow)};",
        "whole bursts; the figures are per unit, so still comparable) and the heavy rows",
        f"({heavy}) {where}.",
        "",
    ]


def markdown(
    meta: dict[str, Any], summary: list[dict[str, Any]], clients: list[str], chart: str | None = None
) -> str:
    """The report of one run: machine, versions, date, settings, the table, the targets, and the
    chart if one was drawn (`chart`: its path relative to the report)."""
    lines = [
        f"# Benchmark results ({meta['mode']} run)",
        "",
        f"- date: {meta['date']}",
        f"- commit: `{meta['commit']}`",
        f"- command: `{meta['command']}`",
        f"- versions: {', '.join(f'{k} {v}' for k, v in meta['versions'].items())}",
        f"- settings: {', '.join(f'{k}={v}' for k, v in meta['config'].items())}",
        "",
        "Machine (`lscpu | head`):",
        "",
        "```",
        meta["lscpu"],
        "```",
        "",
        "Each cell: the median over rounds of the figure, then the median of its ratio to the bare",
        "aiohttp + msgspec loop measured in the same round (time to first token: the difference, in us).",
        "CPU is user + sys inside the client process around the workload only (start-up, imports,",
        "set-up and a warm-up call excluded; the burst includes its fresh clients' set-up and close).",
        "",
        *_slow_note(meta["config"], clients),
        "| figure | " + " | ".join(clients) + " | atoma target |",
        "|---|" + "---:|" * len(clients) + "---|",
    ]
    for row in summary:
        lines.append(f"| {row['label']} | " + " | ".join(_cells(row, clients)) + f" | {_verdict(row)} |")
    lines += ["", "## Targets (atoma-async vs the bare loop, same run)", ""]
    for row in summary:
        if row["target"] is not None:
            versus = row["clients"].get("atoma", {}).get(row["compare"])
            shown = "n/a" if versus is None else _versus(versus, row["compare"])
            verdict = {True: "met", False: "MISSED", None: "not measured"}[row["met"]]
            target = _versus(row["target"], row["compare"])
            lines.append(f"- {row['label']}: {shown} (target <= {target}): {verdict}")
    if chart:
        lines += ["", f"![CPU per request and per chunk, RSS per open stream, log scale]({chart})"]
    return "\n".join(lines) + "\n"
