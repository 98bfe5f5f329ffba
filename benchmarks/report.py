"""From raw records to figures: per-record metrics, medians, pair-by-pair ratios to the bare loop,
the targets, the stdout table and the Markdown report."""

from __future__ import annotations

import statistics
from typing import Any, NamedTuple

__all__ = ["ROWS", "Row", "markdown", "summarise", "table"]

FLOOR = "bare"
_MIB = 1024 * 1024


class Row(NamedTuple):
    workload: str
    metric: str
    label: str
    target: float | None  # the highest ratio to the bare loop this SDK may show


ROWS = [
    Row("seq", "cpu_us", "sequential small: CPU us/request", 1.3),
    Row("seq", "wall_us", "sequential small: wall us/request", None),
    Row("conc", "cpu_us", "concurrency 64: CPU us/request", 1.3),
    Row("conc", "wall_us", "concurrency 64: wall us/request", None),
    Row("stream", "cpu_us", "stream, 1 write/chunk: CPU us/chunk", 1.5),
    Row("stream", "wall_us", "stream, 1 write/chunk: wall us/chunk", None),
    Row("stream-batched", "cpu_us", "stream, batched + keep-alive: CPU us/chunk", 1.5),
    Row("large", "cpu_us", "large body: CPU us/request", None),
    Row("open", "rss_per_stream_kib", "open streams: RSS KiB/stream", 1.2),
    Row("open", "peak_rss_mib", "open streams: peak RSS MiB", None),
    Row("open", "cpu_us", "open streams: CPU us/stream", None),
    Row("import", "net_ms", "cold import: ms net of python", 1.15),
    Row("import", "rss_mib", "cold import: RSS MiB", 1.1),
    Row("first", "net_ms", "import + first request: ms net of python", None),
]


def metrics(record: dict[str, Any]) -> dict[str, float]:
    """The figures of one record (one client, one workload, one round)."""
    workload = record["workload"]
    if workload in ("import", "first"):
        out = {"net_ms": (record["wall"] - record["python_wall"]) * 1000, "rss_mib": record["maxrss"] / _MIB}
        out["cpu_ms"] = record["cpu"] * 1000
        return out
    per = record["chunks"] if workload.startswith("stream") else record["requests"]
    out = {"cpu_us": record["cpu"] / per * 1e6, "wall_us": record["wall"] / per * 1e6}
    if workload == "open":
        out["rss_per_stream_kib"] = (record["rss_open"] - record["rss_base"]) / record["count"] / 1024
        out["peak_rss_mib"] = record["peak_rss"] / _MIB
    return out


def summarise(records: list[dict[str, Any]], clients: list[str]) -> list[dict[str, Any]]:
    """For each row: per client the median of the metric and the median of its ratio to the bare
    loop's figure from the same round (pair by pair), and whether this SDK meets the target."""
    by_key: dict[tuple[str, int], dict[str, dict[str, float]]] = {}
    for record in records:
        if "error" in record:
            continue
        by_key.setdefault((record["workload"], record["round"]), {})[record["client"]] = metrics(record)
    summary = []
    for row in ROWS:
        cells: dict[str, dict[str, Any]] = {}
        for client in clients:
            values, ratios = [], []
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
            if values:
                cells[client] = {
                    "median": statistics.median(values),
                    "ratio": statistics.median(ratios) if ratios else None,
                    "n": len(values),
                }
        if not cells:
            continue  # a workload not run
        ratio = cells.get("atoma", {}).get("ratio")
        met = None if row.target is None or ratio is None else ratio <= row.target
        summary.append({**row._asdict(), "clients": cells, "met": met})
    return summary


def _figure(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 10 else f"{value:.1f}"


def _cell(cell: dict[str, Any] | None, with_ratio: bool) -> str:
    if cell is None:
        return "-"
    text = _figure(cell["median"])
    if with_ratio and cell["ratio"] is not None:
        text += f" ({cell['ratio']:.2f}x)"
    return text


def _verdict(row: dict[str, Any]) -> str:
    if row["target"] is None:
        return ""
    mark = {True: "met", False: "MISSED", None: "?"}[row["met"]]
    return f"<= {row['target']:.2f}x {mark}"


def table(summary: list[dict[str, Any]], clients: list[str]) -> str:
    """Plain-text table: median figure and, in brackets, the median ratio to the bare loop."""
    head = ["figure (median; ratio to bare)", *clients, "atoma target"]
    lines = [head]
    for row in summary:
        cells = [_cell(row["clients"].get(c), c != FLOOR) for c in clients]
        lines.append([row["label"], *cells, _verdict(row)])
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


def markdown(meta: dict[str, Any], summary: list[dict[str, Any]], clients: list[str]) -> str:
    """The report of one run: machine, versions, date, settings, the table and the targets."""
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
        "aiohttp + msgspec loop measured in the same round. CPU is user + sys inside the client",
        "process around the workload only (start-up, imports, set-up and a warm-up call excluded).",
        "",
        "| figure | " + " | ".join(clients) + " | atoma target |",
        "|---|" + "---:|" * len(clients) + "---|",
    ]
    for row in summary:
        cells = [_cell(row["clients"].get(c), c != FLOOR) for c in clients]
        lines.append(f"| {row['label']} | " + " | ".join(cells) + f" | {_verdict(row)} |")
    lines += ["", "## Targets (atoma-async vs the bare loop, same run)", ""]
    for row in summary:
        if row["target"] is not None:
            ratio = row["clients"].get("atoma", {}).get("ratio")
            shown = "n/a" if ratio is None else f"{ratio:.2f}x"
            verdict = {True: "met", False: "MISSED", None: "not measured"}[row["met"]]
            lines.append(f"- {row['label']}: {shown} (target <= {row['target']:.2f}x): {verdict}")
    return "\n".join(lines) + "\n"
