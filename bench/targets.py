"""The issue's targets, each checked against what this run measured: met or missed, and by how much."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from load import Load
from scaling import Soak
from startup import Samples
from transfers import Transfers

REFERENCE_WORKERS = 2  # the configuration: every Python server with two worker processes


@dataclass(frozen=True)
class Target:
    what: str
    bar: float
    higher_is_better: bool
    shown: Callable[[float], str]
    measured: float | None

    @property
    def goal(self) -> str:
        return f"{'≥' if self.higher_is_better else '≤'} {self.shown(self.bar)}"

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        return self.measured >= self.bar if self.higher_is_better else self.measured <= self.bar

    @property
    def verdict(self) -> str:
        if self.measured is None:
            return "not measured"
        if self.higher_is_better:
            share = self.measured / self.bar
            if self.met:
                return f"met: {share:.2f}x the bar"
            return f"**missed**: short by {self.shown(self.bar - self.measured)} ({share:.0%} of the bar)"
        if self.met:
            return f"met: {self.shown(self.bar - self.measured)} to spare"
        over = f", {self.measured / self.bar:.2f}x the limit" if self.bar > 0 else ""
        return f"**missed**: over by {self.shown(self.measured - self.bar)}{over}"


def times(value: float) -> str:
    return f"{value:.2f}x"


def millis(value: float) -> str:
    return f"{value:.1f} ms"


def secs(value: float) -> str:
    return f"{value:.2f} s"


def mib(value: float) -> str:
    return f"{value:.0f} MiB"


def percent(value: float) -> str:
    return f"{value * 100:+.1f} %"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def evaluate(
    load: dict[tuple[str, int], Load],
    startup: dict[str, Samples] | None,
    transfers: Transfers | None,
    soak: Soak | None,
) -> list[Target]:
    def rps(name: str) -> float | None:
        found = load.get((name, REFERENCE_WORKERS))
        return found.rps if found else None

    share = load.get(("share", REFERENCE_WORKERS))
    t = transfers
    cp_s = t.cp.seconds if t and t.cp else None
    up_s = t.upload.seconds if t and t.upload else None
    served = {name: t.served_median(name) for name in ("satchel", "flask")} if t else {}
    w = REFERENCE_WORKERS
    return [
        Target(f"share page vs bare ASGI, {w} workers", 0.3, True, times, _ratio(rps("share"), rps("asgi"))),
        Target(f"share page vs Flask index, {w} workers", 3.0, True, times, _ratio(rps("share"), rps("flask"))),
        Target("share page p99 at 64 connections", 25.0, False, millis, share.p99_ms if share else None),
        Target(f"`/healthz` vs bare ASGI, {w} workers", 0.6, True, times, _ratio(rps("healthz"), rps("asgi"))),
        Target(f"`/api/files` vs bare ASGI, {w} workers", 0.2, True, times, _ratio(rps("api_files"), rps("asgi"))),
        Target("web start: exec to first 200", 1.0, False, secs, startup["web"].median if startup else None),
        Target("worker start: exec to ready", 2.0, False, secs, startup["worker"].median if startup else None),
        Target("upload vs `cp`", 0.8, True, times, _ratio(cp_s, up_s)),
        Target("upload: peak web worker RSS", 130.0, False, mib, t.upload.peak_rss_mib if t and t.upload else None),
        Target("download vs Flask sendfile", 1.0, True, times, _ratio(served.get("flask"), served.get("satchel"))),
        Target("S3 upload vs boto3", 0.8, True, times, _s3(t, "up")),
        Target("S3 download vs boto3", 0.8, True, times, _s3(t, "down")),
        Target("web worker RSS change under sustained load", 0.10, False, percent, soak.change if soak else None),
    ]


def _s3(t: Transfers | None, way: str) -> float | None:
    if t is None:
        return None
    boto, satchel = (t.s3_boto_up, t.s3_up) if way == "up" else (t.s3_boto_down, t.s3_down)
    return _ratio(boto.seconds if boto else None, satchel.seconds if satchel else None)


def table(targets: list[Target]) -> list[str]:
    rows = [f"| {t.what} | {t.goal} | {t.shown(t.measured) if t.measured is not None else '—'} | {t.verdict} |"
            for t in targets]  # fmt: skip
    met = sum(1 for t in targets if t.met)
    measured = sum(1 for t in targets if t.met is not None)
    return [
        f"{met} of {measured} measured targets met.",
        "",
        "| target | bar | measured | verdict |",
        "|---|---|---|---|",
        *rows,
    ]
