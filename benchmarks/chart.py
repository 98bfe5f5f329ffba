"""The chart of a run: CPU per request, CPU per chunk and RSS per open stream of this SDK, the
bare loop, openai-python and atoma-sdk, as bars on a log scale, from a run's summary.

matplotlib comes with the `bench` extra (`pip install -e '.[bench]'`), imported only here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["ChartUnavailable", "draw"]

# client: (legend, colour); the order of the bars in each group
CLIENTS = {
    "bare": ("bare aiohttp + msgspec loop (the floor)", "#7f7f7f"),
    "atoma": ("atoma-async (this SDK)", "#1f77b4"),
    "openai": ("openai-python (httpx)", "#2ca02c"),
    "atoma-sdk": ("atoma-sdk 0.1.3", "#d62728"),
}
# panel title: the (workload, metric) rows it shows, top to bottom
PANELS = {
    "CPU per request, us": [
        ("seq", "cpu_us"), ("conc", "cpu_us"), ("burst", "cpu_us"), ("large", "cpu_us"),
        ("body-1k", "cpu_us"), ("body-100k", "cpu_us"), ("body-1m", "cpu_us"),
    ],
    "CPU per chunk, us": [
        ("stream", "cpu_us"), ("stream-batched", "cpu_us"),
        ("delta-4", "cpu_us"), ("delta-256", "cpu_us"), ("delta-4k", "cpu_us"),
    ],
    "RSS per open stream, KiB": [("open-512", "rss_per_stream_kib"), ("open-2000", "rss_per_stream_kib")],
}  # fmt: skip
_BAR = 0.2  # bar height, in rows


class ChartUnavailable(RuntimeError):
    """matplotlib is not installed (it comes with the `bench` extra)."""


def _label(row: dict[str, Any]) -> str:
    return str(row["label"]).split(":")[0]


def _value_text(cell: dict[str, Any], client: str) -> str:
    value = cell["median"]
    text = f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
    return text if client == "bare" or cell["ratio"] is None else f"{text} ({cell['ratio']:.2f}x)"


def _panel(ax: Any, title: str, rows: list[dict[str, Any]], clients: list[str]) -> None:
    """One group of bars per row, one bar per client, value and ratio to the floor written on it."""
    values = []
    for i, row in enumerate(rows):
        for j, client in enumerate(clients):
            cell = row["clients"].get(client)
            if cell is None:
                continue
            y = i + (j - (len(clients) - 1) / 2) * _BAR
            ax.barh(y, cell["median"], height=_BAR, color=CLIENTS[client][1])
            ax.text(cell["median"] * 1.06, y, _value_text(cell, client), va="center", fontsize=7)
            values.append(cell["median"])
    ax.set_xscale("log")
    ax.set_xlim(min(values) / 2, max(values) * 6)  # room for the text after the longest bar
    ax.set_yticks(range(len(rows)), [_label(row) for row in rows], fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # the first row on top
    ax.set_title(f"{title} (log scale, lower is better)", fontsize=9, loc="left")
    ax.grid(axis="x", which="major", linewidth=0.4, alpha=0.5)
    ax.tick_params(axis="x", labelsize=7)


def draw(summary: list[dict[str, Any]], clients: list[str], meta: dict[str, Any], path: Path) -> None:
    """Write the chart to `path` (SVG, PNG or PDF, by its suffix). Rows or clients not in the run
    are left out; raises ChartUnavailable without matplotlib."""
    try:
        from matplotlib import rc_context
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch
    except ImportError as exc:
        raise ChartUnavailable("the chart needs matplotlib: pip install -e '.[bench]'") from exc
    shown = [c for c in CLIENTS if c in clients]
    by_key = {(row["workload"], row["metric"]): row for row in summary}
    panels = {
        title: [by_key[key] for key in keys if key in by_key and by_key[key]["clients"]]
        for title, keys in PANELS.items()
    }
    panels = {title: rows for title, rows in panels.items() if rows}
    if not panels:
        return
    heights = [len(rows) * len(shown) * _BAR + 0.8 for rows in panels.values()]
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "atoma-bench"}):
        fig = Figure(figsize=(10, sum(heights) + 1.2), layout="constrained")
        axes = fig.subplots(len(panels), 1, height_ratios=heights, squeeze=False)[:, 0]
        for ax, (title, rows) in zip(axes, panels.items(), strict=True):
            _panel(ax, title, rows, shown)
        legend = [Patch(color=CLIENTS[c][1], label=CLIENTS[c][0]) for c in shown]
        fig.legend(handles=legend, loc="outside lower center", ncols=len(shown), fontsize=8, frameon=False)
        fig.suptitle(
            f"atoma-async benchmarks: {meta['mode']} run, {meta['date']}, commit {meta['commit'].split()[0]}\n"
            "each bar the median over rounds; in brackets its ratio to the bare loop in the same round",
            fontsize=9,
        )
        fig.savefig(path, metadata={"Date": None} if path.suffix == ".svg" else None)
