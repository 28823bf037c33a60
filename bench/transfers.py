"""Big transfers: with curl next to ``cp`` and sendfile servers, and ``transfer.py``/``s3_transfer.py`` as they are.

The issue's method first: the file uploaded with ``curl -T`` next to ``cp`` of it on the same disk (then
``sync``), with the web worker's peak RSS, and downloaded in turns by ``curl -o /dev/null`` (clients light
enough that the server sets the pace) from Satchel, from the Flask file host under Gunicorn (the WSGI file
wrapper is ``sendfile``) and from nginx (``sendfile on``). Then the two scripts, unchanged, their tables read
back: ``transfer.py`` (a hashing Python client, next to ``cp``) and ``s3_transfer.py`` (boto3 on the same S3
server as the baseline).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from servers import HERE, Server, flask_baseline, nginx, satchel_web, serving

from satchel.runtime.embedded import free_port

from support.memory import PeakRss

BLOCK = 1024 * 1024


@dataclass
class Timed:
    seconds: float
    peak_rss_mib: float | None = None

    def mib_s(self, mib: int) -> float:
        return mib / self.seconds


@dataclass
class Transfers:
    size_mib: int
    cp: Timed | None = None  # cp of the file on the same disk, then sync
    upload: Timed | None = None  # curl -T through satchel web, file storage, with the worker's peak RSS
    served: dict[str, list[float]] = field(default_factory=dict)  # server -> curl download seconds, in turns
    script_cp: Timed | None = None  # transfer.py's rows
    script_upload: Timed | None = None
    script_download: Timed | None = None
    s3_boto_up: Timed | None = None  # s3_transfer.py's rows
    s3_up: Timed | None = None
    s3_boto_down: Timed | None = None
    s3_down: Timed | None = None
    import_cp: Timed | None = None  # import_files.py's rows: cp, the whole command, one byte, the bytes alone
    import_command: Timed | None = None
    import_start: Timed | None = None
    import_bytes: Timed | None = None

    def served_median(self, server: str) -> float | None:
        runs = self.served.get(server)
        return statistics.median(runs) if runs else None


def read_table(lines: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """The header and rows (by first cell) of the first markdown table in ``lines``."""
    header: list[str] = []
    rows: dict[str, list[str]] = {}
    for line in lines:
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not header:
            header = cells
        else:
            rows[cells[0]] = cells
    return header, rows


def _timed(header: list[str], rows: dict[str, list[str]], chosen: Callable[[str], bool]) -> Timed:
    matches = [cells for name, cells in rows.items() if chosen(name)]
    if len(matches) != 1:
        raise ValueError(f"expected one matching row in {list(rows)}")
    cells = matches[0]
    column = next((i for i, name in enumerate(header) if name.endswith("peak RSS")), None)
    rss = "—" if column is None else cells[column]
    return Timed(float(cells[header.index("seconds")]), float(rss.split()[0]) if rss[:1].isdigit() else None)


def run_script(script: str, size_mib: int, out: Path, log: Path) -> list[str]:
    """``bench/<script> --size-mib N`` with this environment; its table's lines."""
    command = [sys.executable, str(HERE / script), "--size-mib", str(size_mib), "--out", str(out)]
    with log.open("ab") as output:
        done = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, env=dict(os.environ), cwd=HERE)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"{script} failed ({done.returncode}):\n{tail}")
    return out.read_text().splitlines()


def measure_scripts(result: Transfers, work: Path, logs: Path) -> None:
    lines = run_script("transfer.py", result.size_mib, work / "transfer.md", logs / "transfer.log")
    header, rows = read_table(lines)
    result.script_cp = _timed(header, rows, lambda name: "`cp`" in name)
    result.script_upload = _timed(header, rows, lambda name: name.startswith("upload"))
    result.script_download = _timed(header, rows, lambda name: name.startswith("download"))

    lines = run_script("s3_transfer.py", result.size_mib, work / "s3_transfer.md", logs / "s3_transfer.log")
    header, rows = read_table(lines)
    result.s3_boto_up = _timed(header, rows, lambda name: "boto3" in name and "upload" in name)
    result.s3_up = _timed(header, rows, lambda name: name.startswith("upload"))
    result.s3_boto_down = _timed(header, rows, lambda name: "boto3" in name and "GET" in name)
    result.s3_down = _timed(header, rows, lambda name: name.startswith("download"))

    lines = run_script("import_files.py", result.size_mib, work / "import.md", logs / "import.log")
    header, rows = read_table(lines)
    result.import_cp = _timed(header, rows, lambda name: "`cp`" in name)
    result.import_command = _timed(header, rows, lambda name: "the whole command" in name)
    result.import_start = _timed(header, rows, lambda name: "1 byte" in name)
    result.import_bytes = _timed(header, rows, lambda name: "the file's bytes" in name)


def write_random(path: Path, mib: int) -> str:
    """A file of ``mib`` MiB that no layer can compress; its SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        block = os.urandom(BLOCK)
        for _ in range(mib):
            out.write(block)
            digest.update(block)
    return digest.hexdigest()


def verify(url: str, sha256: str) -> None:
    """Check, once and untimed, that ``url`` sends the file's bytes."""
    digest = hashlib.sha256()
    with httpx.stream("GET", url, timeout=600) as stream:
        stream.raise_for_status()
        for chunk in stream.iter_raw(BLOCK):
            digest.update(chunk)
    if digest.hexdigest() != sha256:
        raise RuntimeError(f"{url} sent other bytes than the file's")


def fetch(url: str, size: int) -> float:
    """Seconds curl takes to download ``url`` to /dev/null: a client light enough that the server sets the pace."""
    done = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}", url],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    status, received, seconds = done.stdout.split()
    if status != "200" or int(received) != size:
        raise RuntimeError(f"{url} answered {status} with {received} of {size} bytes")
    return float(seconds)


def copy(source: Path) -> Timed:
    """``cp`` of ``source`` beside it, until the copy is on disk (``sync``), as transfer.py times it."""
    copy = source.with_suffix(".copy")
    started = time.perf_counter()
    shutil.copyfile(source, copy)
    os.sync()
    seconds = time.perf_counter() - started
    copy.unlink()
    return Timed(seconds)


def upload(web: Server, url: str, token: str, source: Path) -> tuple[Timed, str]:
    """``curl -T`` of ``source`` into Satchel with an API token: its time and peak RSS, and the share's link."""
    command = ["curl", "-sS", "-T", str(source), "-H", f"Authorization: Bearer {token}"]
    command += ["-w", "\n%{http_code} %{time_total}", f"{url}/api/files/{source.name}"]
    with PeakRss(web.process.pid) as rss:
        done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=900)
    body, _, status_line = done.stdout.rpartition("\n")
    status, seconds = status_line.split()
    if status != "201":
        raise RuntimeError(f"upload answered {status}: {body[:300]}\n{web.tail()}")
    link = str(json.loads(body)["share"]["url"]) + "/download"
    return Timed(float(seconds), rss.peak / 2**20), link


def measure_curl(result: Transfers, env: dict[str, str], token: str, work: Path, logs: Path, rounds: int) -> None:
    """cp, then the upload; then the same file from Satchel, the Flask host and nginx (one worker each) in turns."""
    files = work / "served"
    files.mkdir(mode=0o755, exist_ok=True)
    work.chmod(0o755)  # nginx's workers must reach the file
    source = files / "big.bin"
    sha256 = write_random(source, result.size_mib)
    (files / "ping.txt").write_text("ok")
    flask_port, nginx_port = free_port(), free_port()
    web = satchel_web(env, 1, logs / "transfer-web.log")
    satchel_url = f"http://127.0.0.1:{env['PORT']}"
    with serving(web, f"{satchel_url}/healthz"):
        result.cp = copy(source)
        result.upload, link = upload(web, satchel_url, token, source)
        flask = flask_baseline(flask_port, 1, logs / "transfer-flask.log", dict(os.environ), files)
        with serving(flask, f"http://127.0.0.1:{flask_port}/"):
            urls = {"satchel": link, "flask": f"http://127.0.0.1:{flask_port}/files/big.bin"}
            server: Server | None = nginx(work / "nginx", nginx_port, files, logs / "transfer-nginx.log")
            try:
                if server is not None:
                    server.wait_http(f"http://127.0.0.1:{nginx_port}/files/ping.txt", timeout=15)
                    urls["nginx"] = f"http://127.0.0.1:{nginx_port}/files/big.bin"
                for url in urls.values():
                    verify(url, sha256)
                order, size = list(urls), source.stat().st_size
                for turn in range(rounds):
                    for name in order[turn % len(order) :] + order[: turn % len(order)]:
                        result.served.setdefault(name, []).append(fetch(urls[name], size))
            finally:
                if server is not None:
                    server.stop()
    source.unlink()
