"""bench/RESULTS.md: what one run of ``run.py`` measured, every number next to its baseline from the same run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import targets
from load import Load
from scaling import ENDPOINTS, SATCHEL_ENDPOINTS, Soak
from startup import Samples
from transfers import Transfers

NOTES = Path(__file__).resolve().parent / "NOTES.md"  # optional, hand-written: what the profiles showed


@dataclass
class Results:
    command: str
    started: str  # UTC, ISO 8601
    load_seconds: int
    connections: int
    worker_counts: list[int]
    runs: int
    machine: list[tuple[str, str]] = field(default_factory=list)
    load_average: dict[str, str] = field(default_factory=dict)  # moment -> "1 / 5 / 15 min"
    load: dict[tuple[str, int], Load] = field(default_factory=dict)
    startup: dict[str, Samples] | None = None
    transfers: Transfers | None = None
    soak: Soak | None = None
    failures: dict[str, str] = field(default_factory=dict)  # section -> what went wrong
    duration_s: float = 0.0
    plots: list[Path] = field(default_factory=list)


def _machine(r: Results) -> list[str]:
    rows = [*r.machine, *((f"load average (1/5/15 min) {when}", v) for when, v in r.load_average.items())]
    return ["| | |", "|---|---|", *(f"| {what} | {value} |" for what, value in rows)]


def _load(r: Results) -> list[str]:
    lines = [
        f"`wrk -t2 -c{r.connections} -d{r.load_seconds}s --latency` after a 1 s warm-up whose numbers are dropped;",
        "wrk shares the cores with the server. Ratios compare with the baseline at the same worker count, measured",
        "seconds apart: Satchel's `WEB_CONCURRENCY` and the baselines' `gunicorn -w` are the same number.",
        "",
        "| endpoint | workers | req/s | p50 ms | p99 ms | vs bare ASGI | vs Flask index | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, label in ENDPOINTS.items():
        for w in r.worker_counts:
            if (name, w) not in r.load:
                continue
            load, asgi, flask = r.load[name, w], r.load.get(("asgi", w)), r.load.get(("flask", w))
            vs_asgi = f"{load.rps / asgi.rps:.3f}x" if asgi else "—"
            vs_flask = f"{load.rps / flask.rps:.2f}x" if flask else "—"
            errors = f"{load.errors} ({load.error_share:.1%})" if load.errors else "0"
            lines.append(
                f"| {label} | {w} | {load.rps:,.0f} | {load.p50_ms:.1f} | {load.p99_ms:.1f} | {vs_asgi} | "
                f"{vs_flask} | {errors} |"
            )
    scaling = []
    for name in (*SATCHEL_ENDPOINTS, "asgi"):
        ends = [r.load.get((name, w)) for w in (min(r.worker_counts), max(r.worker_counts))]
        if ends[0] and ends[1]:
            scaling.append(f"{name} {ends[1].rps / ends[0].rps:.2f}x")
    if scaling and len(r.worker_counts) > 1:
        span = f"{min(r.worker_counts)} to {max(r.worker_counts)} workers"
        lines += ["", f"Scaling from {span} (the machine has the cores it has): {', '.join(scaling)}."]
    for plot in r.plots:
        lines += ["", f"![{plot.stem}](results/{plot.name})"]
    return lines


def _startup(r: Results) -> list[str]:
    import startup

    s = r.startup
    assert s is not None
    web, python_m, cold = s["web"], s["web_python_m"], s["web_cold"]
    spread = max(x.seconds for x in web.starts) - min(x.seconds for x in web.starts)
    launcher = python_m.median - web.median
    findings = [
        "What each difference from the operator's start (first row) comes to in this run, medians:",
        "",
        f"- The launcher and discarded output (the first bench's `python -m satchel web`): {launcher:+.2f} s"
        + (f", inside this run's spread of the first row ({spread:.2f} s)." if abs(launcher) <= spread else "."),
        f"- No cached bytecode (every module compiled by every process): {cold.median - web.median:+.2f} s.",
    ]
    if (every := web.median_of("all_workers")) is not None:
        findings.append(f"- Waiting for every worker instead of the first answer: {every - web.median:+.2f} s.")
    if (cli := web.median_of("cli")) is not None:
        findings.append(
            f"- Of the first row, exec to Gunicorn's \"Starting gunicorn\": {cli:.2f} s (the CLI's imports and "
            "settings, and the application itself when the arbiter loads it before forking, `preload_app`)."
        )
    findings += [
        "",
        "`results/startup.md` is `startup.py` run alone, with the second row's method. The image compiles its bytecode",
        "at build time, so in production the first row applies; the third is a checkout whose sources just changed, or",
        "an environment that never keeps `.pyc` files.",
    ]
    return [*startup.table(s, r.runs), "", *findings]


def _rate(mib: int, seconds: float | None) -> str:
    return f"{mib / seconds:,.0f} MiB/s" if seconds else "—"


def _transfers(r: Results) -> list[str]:
    t = r.transfers
    assert t is not None
    mib = t.size_mib

    def row(what: str, timed: object, baseline: object, vs: str) -> str:
        seconds = getattr(timed, "seconds", None)
        base = getattr(baseline, "seconds", None)
        rss = getattr(timed, "peak_rss_mib", None)
        shown = f"{seconds:.2f}" if seconds else "—"
        ratio = f"{base / seconds:.2f}x {vs}" if seconds and base else "—"
        return f"| {what} | {shown} | {_rate(mib, seconds)} | {ratio} | {f'{rss:.0f} MiB' if rss else '—'} |"

    lines = [
        f"{mib} MiB over loopback; Satchel and the sendfile servers with one worker each, file storage.",
        "",
        "**With curl, as the issue measured.** `cp` of the file on the same disk, then `sync`, and `curl -T` of it",
        "into Satchel with an API token, with the web worker's peak RSS while the bytes move; then the same file",
        f"downloaded in turns{_runs(t)} by `curl -o /dev/null` (its bytes checked once beforehand) from Satchel's",
        "share link, the Flask host (`send_from_directory` under Gunicorn, which sends with sendfile) and nginx",
        "(`sendfile on`). curl is light enough that the server, not the client, sets the pace.",
        "",
        "| operation | seconds | rate | vs baseline | web worker peak RSS |",
        "|---|---|---|---|---|",
    ]
    if t.cp:
        lines += [row("`cp` + `sync` (baseline)", t.cp, t.cp, "`cp`"), row("upload: `curl -T`", t.upload, t.cp, "`cp`")]
    flask = t.served_median("flask")
    for name, label in (("flask", "Flask + Gunicorn sendfile (baseline)"), ("satchel", "Satchel"), ("nginx", "nginx")):
        if (median := t.served_median(name)) is not None:
            runs = ", ".join(f"{s:.2f}" for s in t.served[name])
            ratio = f"{flask / median:.2f}x Flask" if flask else "—"
            lines.append(f"| download: {label}, runs {runs} s | {median:.2f} | {_rate(mib, median)} | {ratio} | — |")
    if t.script_cp:
        lines += [
            "",
            "**`transfer.py`**, unchanged: its client is Python (httpx), hashing what it sends and receives on the",
            "same cores, so its rates say more about the client than about the server; they are kept for comparison",
            "with its earlier results.",
            "",
            "| operation | seconds | rate | vs baseline | web worker peak RSS |",
            "|---|---|---|---|---|",
            row("`cp` + `sync` (baseline)", t.script_cp, t.script_cp, "`cp`"),
            row("upload (PUT)", t.script_upload, t.script_cp, "`cp`"),
            row("download (share link)", t.script_download, t.script_cp, "`cp`"),
        ]
    if t.s3_boto_up:
        lines += [
            "",
            "**`s3_transfer.py`**, unchanged: `s3://` storage on a local S3 server, against boto3 doing the same",
            "transfer to the same server in the same run.",
            "",
            "| operation | seconds | rate | vs baseline | web worker peak RSS |",
            "|---|---|---|---|---|",
            row("boto3 `upload_fileobj` (baseline)", t.s3_boto_up, t.s3_boto_up, "boto3"),
            row("upload through Satchel", t.s3_up, t.s3_boto_up, "boto3"),
            row("boto3 one streamed GET (baseline)", t.s3_boto_down, t.s3_boto_down, "boto3"),
            row("download through Satchel", t.s3_down, t.s3_boto_down, "boto3"),
        ]
    if t.import_cp:
        lines += [
            "",
            "**`import_files.py`**: the same size of file, already on the server's disk, brought into an account by",
            "`satchel files import` (read in 1 MiB blocks, hashed, into file storage, recorded), timed with `sync` as",
            "`cp` is; the command's own start-up and transaction measured apart by importing one byte. The RSS",
            "column is the import process's own peak here, not a web worker's.",
            "",
            "| operation | seconds | rate | vs baseline | process peak RSS |",
            "|---|---|---|---|---|",
            row("`cp` + `sync` (baseline)", t.import_cp, t.import_cp, "`cp`"),
            row("`satchel files import` + `sync`, the whole command", t.import_command, t.import_cp, "`cp`"),
            _start_row(t.import_start),
            row("the file's bytes (the whole command less the 1-byte one)", t.import_bytes, t.import_cp, "`cp`"),
        ]
    return lines


def _start_row(start: object) -> str:
    """The import of one byte: a time and a memory, but no rate (nothing was moved)."""
    seconds, rss = getattr(start, "seconds", None), getattr(start, "peak_rss_mib", None)
    return (
        f"| the same command importing 1 byte | {f'{seconds:.2f}' if seconds else '—'} | — | — | "
        f"{f'{rss:.0f} MiB' if rss else '—'} |"
    )


def _runs(t: Transfers) -> str:
    runs = len(t.served.get("satchel", []))
    return f" ({runs} each, the median shown)" if runs else ""


def _soak(r: Results) -> list[str]:
    s = r.soak
    assert s is not None
    lines = [
        f"`satchel web` with {s.workers} workers; `wrk -c{r.connections}` on the share page. RSS of each web worker a",
        "second after start, a second after a warm-up load (its caches filled: compiled SQL, templates, pools),",
        f"and a second after {s.seconds} s of sustained load. The target compares the last two.",
        "",
        "| worker | at rest | after warm-up | after the soak | change |",
        "|---|---|---|---|---|",
    ]
    for pid in sorted(s.warm):
        after = s.after.get(pid)
        change = f"{after / s.warm[pid] - 1:+.1%}" if after else "gone"
        rest = s.at_rest.get(pid)
        lines.append(
            f"| pid {pid} | {f'{rest / 2**20:.1f} MiB' if rest else '—'} | {s.warm[pid] / 2**20:.1f} MiB | "
            f"{f'{after / 2**20:.1f} MiB' if after else '—'} | {change} |"
        )
    lines += [
        "",
        f"During the soak: {s.load.rps:,.0f} req/s, p50 {s.load.p50_ms:.1f} ms, p99 {s.load.p99_ms:.1f} ms, "
        f"{s.load.errors} errors." + ("" if s.same_workers else " **A worker was replaced during the soak.**"),
    ]
    return lines


def render(r: Results) -> str:
    size = f"{r.transfers.size_mib} MiB transfers, " if r.transfers else ""
    lines = [
        "# Satchel benchmarks",
        "",
        f"Written by `{r.command}` on {r.started} in {r.duration_s / 60:.1f} min ({r.load_seconds} s loads, {size}"
        f"{r.runs} starts of each process, {r.soak.seconds if r.soak else '—'} s soak). Every figure was measured in",
        "this run, each next to the baseline it is compared with; the machine is shared, so ratios from the same",
        "run are what to read, and the load averages below say how busy it was.",
        "",
        "## Machine",
        "",
        *_machine(r),
        "",
        "## Targets",
        "",
        *targets.table(targets.evaluate(r.load, r.startup, r.transfers, r.soak)),
    ]
    sections = [
        ("Throughput and latency: the scaling curve", "load", _load, bool(r.load)),
        ("Start-up", "startup", _startup, r.startup is not None),
        ("Transfers", "transfers", _transfers, r.transfers is not None),
        ("Memory under sustained load", "soak", _soak, r.soak is not None),
    ]
    for title, key, render_section, measured in sections:
        lines += ["", f"## {title}", ""]
        if key in r.failures:
            lines += [f"**This section failed:** `{r.failures[key]}`", ""]
        if measured:
            lines += render_section(r)
        elif key not in r.failures:
            lines.append("Not run (`--sections`).")
    if NOTES.exists():
        lines += ["", "## Notes", "", NOTES.read_text().strip()]
    return "\n".join(lines) + "\n"
