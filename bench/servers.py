"""The servers a benchmark runs: ``satchel web`` as an operator starts it, and the baselines beside it.

Every server runs in a session of its own with its output in a log file, and is stopped (SIGTERM, then
SIGKILL to its whole group) when the ``with`` block ends, whatever happened inside it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent  # the project's .venv/bin: its console scripts, as the Procfile runs them
SHM = Path("/dev/shm")
NGINX = Path("/usr/sbin/nginx")


class Server:
    """One process tree started from ``command``, its stdout and stderr in ``log``."""

    def __init__(self, command: Sequence[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> None:
        self.command = [str(part) for part in command]
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_http(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.command[0]} exited ({self.process.returncode}):\n{self.tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"no 200 from {url} within {timeout:g}s:\n{self.tail()}")

    def workers(self) -> list[psutil.Process]:
        """The processes that serve requests: the children of a Gunicorn arbiter or nginx master."""
        return psutil.Process(self.process.pid).children(recursive=True)

    def stop(self, timeout: float = 30) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # whatever the arbiter left behind
        self.process.wait()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


@contextmanager
def serving(server: Server, ready_url: str, timeout: float = 60) -> Iterator[Server]:
    try:
        server.wait_http(ready_url, timeout)
        yield server
    finally:
        server.stop()


def gunicorn_options(port: int, workers: int) -> list[str]:
    """What ``satchel web`` gives Gunicorn (``satchel.web.server.WebServer``), as command-line options."""
    options = ["-w", str(workers), "-b", f"127.0.0.1:{port}", "--keep-alive", "5", "--timeout", "30"]
    options += ["--graceful-timeout", "25", "--no-control-socket", "--log-level", "warning"]
    return options + (["--worker-tmp-dir", str(SHM)] if SHM.is_dir() else [])


def satchel_web(env: dict[str, str], workers: int, log: Path) -> Server:
    """``satchel web`` by its console script, as the Procfile and the image start it."""
    return Server([BIN / "satchel", "web"], {**env, "WEB_CONCURRENCY": str(workers)}, log)


def baseline_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` with Satchel's Uvicorn worker settings for ``baseline_worker.BaselineWorker``."""
    from satchel.web.server import SatchelWorker

    settings = {k: v for k, v in SatchelWorker.CONFIG_KWARGS.items() if isinstance(v, str | bool | int | float)}
    return {**env, "BENCH_UVICORN_CONFIG": json.dumps(settings)}


def asgi_baseline(app: str, port: int, workers: int, log: Path, env: dict[str, str]) -> Server:
    """An ASGI app of bench/ (``module:app``) on Satchel's Gunicorn + Uvicorn settings."""
    command = [BIN / "gunicorn", "--chdir", HERE, "-k", "baseline_worker.BaselineWorker"]
    return Server([*command, *gunicorn_options(port, workers), app], baseline_env(env), log)


def flask_baseline(port: int, workers: int, log: Path, env: dict[str, str], files: Path | None = None) -> Server:
    """The Flask file host under Gunicorn's default sync workers, serving ``files`` when given."""
    command = [BIN / "gunicorn", "--chdir", HERE, *gunicorn_options(port, workers), "baseline_flask:app"]
    return Server(command, {**env, "BENCH_FILES": str(files or HERE)}, log)


def nginx_config(folder: Path, port: int, files: Path) -> str:
    """nginx serving ``files`` at /files/ with sendfile, every path it writes under ``folder``."""
    user = "user root;" if os.geteuid() == 0 else ""  # the files live in a private temporary folder
    return f"""\
{user}
worker_processes 1;
daemon off;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {folder / "body"};
    proxy_temp_path {folder / "proxy"};
    fastcgi_temp_path {folder / "fastcgi"};
    uwsgi_temp_path {folder / "uwsgi"};
    scgi_temp_path {folder / "scgi"};
    server {{
        listen 127.0.0.1:{port};
        location /files/ {{ alias {files}/; }}
    }}
}}
"""


def nginx(folder: Path, port: int, files: Path, log: Path) -> Server | None:
    """nginx when this machine has it, else None (its rows are then left out)."""
    if not NGINX.exists():
        return None
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "nginx.conf"
    config.write_text(nginx_config(folder, port, files))
    return Server([NGINX, "-p", folder, "-c", config, "-e", folder / "error.log"], dict(os.environ), log)
