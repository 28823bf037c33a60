"""``satchel dev``: one command gives a person the whole service, embedded servers included."""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest

from satchel.runtime.embedded import free_port

from support.processes import SatchelProcess

pytestmark = pytest.mark.timeout(240)


def _dev_env(tmp_path: Path) -> dict[str, str]:
    # Nothing but the basics: dev mode must bring its own PostgreSQL, Redis and storage.
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return {**keep, "PORT": str(free_port()), "PYTHONUNBUFFERED": "1"}


def _run_once(tmp_path: Path, env: dict[str, str]) -> tuple[str, int]:
    process = SatchelProcess("dev", env=env, cwd=str(tmp_path))
    banner = re.compile(r"Satchel is running at (http://\S+)")
    process.wait_for(lambda: any(banner.search(line) for line in process.lines), timeout=120, what="the URL")
    url = next(m.group(1) for line in process.lines if (m := banner.search(line)))
    assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    children = psutil.Process(process.process.pid).children(recursive=True)
    process.signal(signal.SIGINT)  # what Ctrl-C sends
    code = process.wait(90)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE], "everything stopped"
    return url, code


def test_dev_starts_everything_prints_the_url_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    env = _dev_env(tmp_path)
    url, code = _run_once(tmp_path, env)
    assert code == 0
    assert url == f"http://localhost:{env['PORT']}"
    data = tmp_path / ".satchel"
    assert (data / "postgres" / "PG_VERSION").exists() and (data / "objects").is_dir()
    key = (data / "secret_key").read_text()

    _, code = _run_once(tmp_path, env)  # a second run reuses the data
    assert code == 0
    assert (data / "secret_key").read_text() == key
    from satchel.runtime.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(data / "postgres")
    server.start()
    try:
        with psycopg.connect(server.url) as conn:
            migrations = conn.execute("SELECT count(*) FROM releases").fetchone()
        assert migrations == (2,), "both runs migrated the same database"
    finally:
        server.stop()
    assert sys.executable
