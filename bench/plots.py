"""The scaling curve as pictures: throughput and p99 latency by endpoint and worker count."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server

import matplotlib.pyplot as plt
from load import Load
from scaling import ENDPOINTS

P99_BAR_MS = 25.0


def _plot(load: dict[tuple[str, int], Load], value: str, title: str, ylabel: str, out: Path) -> Path:
    workers = sorted({w for _, w in load})
    figure, axes = plt.subplots(figsize=(9, 5.5))
    for name, label in ENDPOINTS.items():
        points = [(w, getattr(load[name, w], value)) for w in workers if (name, w) in load]
        if points:
            style = "-o" if name in ("share", "healthz", "api_files") else "--s"
            axes.plot(*zip(*points, strict=True), style, label=label.replace("`", ""))
    if value == "p99_ms":
        axes.axhline(P99_BAR_MS, color="grey", linestyle=":", label=f"target for the share page: {P99_BAR_MS:g} ms")
    axes.set_yscale("log")
    axes.set_xticks(workers)
    axes.set_xlabel("worker processes (WEB_CONCURRENCY, gunicorn -w)")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def draw(load: dict[tuple[str, int], Load], folder: Path, connections: int) -> list[Path]:
    if not load:
        return []
    subtitle = f"wrk, {connections} connections, same machine"
    return [
        _plot(load, "rps", f"Throughput ({subtitle})", "requests per second (log)", folder / "throughput.png"),
        _plot(load, "p99_ms", f"p99 latency ({subtitle})", "p99 latency, ms (log)", folder / "latency_p99.png"),
    ]
