"""Debian's nginx as the reverse proxy in front of several ``satchel web`` hosts, as an operator would run it.

``satchel_site`` is the part an operator copies: one ``upstream`` with every web host and one
``server`` that streams both ways. ``main_config`` wraps it for a test: every path nginx writes
(pid, logs, temporary files) lives in the test's own folder, and nothing of /etc/nginx is read.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

NGINX = Path("/usr/sbin/nginx")


def require_nginx() -> None:
    """Fail when CI lacks nginx (CI must run the tests that need it); elsewhere skip, saying what to install."""
    if NGINX.exists():
        return
    reason = f"{NGINX} is not installed (apt-get install nginx), so the reverse-proxy tests cannot run"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run them.")
    pytest.skip(reason)


def satchel_site(backends: Sequence[str], *, listen: str = "80", fail_timeout: int = 30) -> str:
    """The ``http``-level configuration for Satchel: round robin over ``backends`` (``host:port``)."""
    servers = "\n".join(f"        server {b} max_fails=1 fail_timeout={fail_timeout}s;" for b in backends)
    return f"""\
    upstream satchel_web {{
        # Shared memory: every nginx worker process sees the same round-robin turn and the same failures.
        zone satchel_web 64k;
        # max_fails=1: one refused connection takes a dead host out of the rotation for fail_timeout;
        # after that nginx offers it one request again, so a restarted host rejoins by itself.
{servers}
    }}

    server {{
        listen {listen};

        # Satchel enforces SATCHEL_MAX_UPLOAD_BYTES itself, while it streams: no second limit here.
        client_max_body_size 0;
        # Stream request bodies to Satchel as they arrive instead of spooling them to nginx's disk first;
        # a 10 GiB upload then costs nginx no disk, and Satchel counts its bytes and checksum as they come.
        proxy_request_buffering off;
        # Stream responses too: a large download starts at once and never lands in a temporary file.
        proxy_buffering off;
        # HTTP/1.1 to the upstream: needed to stream a chunked request body without buffering it.
        proxy_http_version 1.1;

        # Satchel believes X-Forwarded-* only from the addresses in its FORWARDED_ALLOW_IPS: list this proxy's.
        proxy_set_header Host $host;  # the host in the links Satchel builds, unless SATCHEL_PUBLIC_URL is set
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;  # the client's address: rate limits, logs
        proxy_set_header X-Forwarded-Proto $scheme;  # https here, and the links Satchel builds say https

        # A host that refuses the connection or does not answer in time: the request goes to the next one.
        # nginx never resends a POST or PATCH whose request already reached a host, so an upload is
        # not written twice; the tus client asks where it stands (HEAD) and resumes from there.
        proxy_next_upstream error timeout;
        proxy_connect_timeout 2s;
        # Longer than SATCHEL_BODY_TIMEOUT (60 s): Satchel, not nginx, decides that an upload has stalled.
        client_body_timeout 120s;
        proxy_send_timeout 120s;
        # The request that completes a resumable upload whose parts came through several hosts answers once
        # the file is hashed from storage: raise this for very large files on slow storage.
        proxy_read_timeout 120s;

        location / {{
            proxy_pass http://satchel_web;
        }}
    }}
"""


ACCESS_FORMAT = (
    '\'$remote_addr "$request" $status upstream=$upstream_addr upstream_status=$upstream_status '
    "instance=$upstream_http_satchel_instance'"
)


def main_config(folder: Path, site: str) -> str:
    """A complete nginx.conf around ``site`` whose every path is under ``folder``."""
    temp = {kind: folder / "temp" / kind.split("_")[0] for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    temp_paths = "\n".join(f"    {kind}_temp_path {path};" for kind, path in temp.items())
    return f"""\
worker_processes 2;  # "auto" on a real proxy: one per core
pid {folder / "nginx.pid"};
lock_file {folder / "nginx.lock"};
error_log {folder / "error.log"} warn;

events {{
    worker_connections 512;
}}

http {{
    log_format upstreams {ACCESS_FORMAT};
    access_log {folder / "access.log"} upstreams;
{temp_paths}

{site}}}
"""


@dataclass
class Nginx:
    """nginx in the foreground serving ``site``, started under ``prefix`` (``ip netns exec …`` on another host)."""

    folder: Path
    site: str
    prefix: Sequence[str] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def config(self) -> Path:
        return self.folder / "nginx.conf"

    def start(self, answers: str, timeout: float = 15) -> None:
        """Start, and wait until ``answers`` (a host:port) accepts connections."""
        (self.folder / "temp").mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o755)  # nginx's worker processes drop root and must reach their temporary folders
        self.config.write_text(main_config(self.folder, self.site))
        log = self.folder / "error.log"
        command = [*self.prefix, str(NGINX), "-p", str(self.folder), "-c", str(self.config), "-e", str(log)]
        checked = subprocess.run([*command, "-t", "-q"], capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, f"nginx refused its configuration:\n{checked.stderr}"
        self.process = subprocess.Popen(
            [*command, "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        host, _, port = answers.rpartition(":")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"nginx exited ({self.process.returncode}): {self.error_log()}")
            try:
                socket.create_connection((host, int(port)), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"nginx did not listen on {answers} within {timeout:g}s: {self.error_log()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # SIGTERM: nginx's fast shutdown
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def error_log(self) -> str:
        path = self.folder / "error.log"
        return path.read_text() if path.exists() else ""

    def access_log(self) -> list[str]:
        path = self.folder / "access.log"
        return path.read_text().splitlines() if path.exists() else []
