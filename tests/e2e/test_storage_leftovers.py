"""A web process killed mid-upload leaves half-written bytes: `storage verify` finds them, `--fix` removes them."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import uuid
from pathlib import Path

import pytest

from support.moto import MotoServer
from support.processes import SatchelProcess, create_account, run_satchel

pytestmark = [pytest.mark.slow]

SENT = 150 * 1024 * 1024


def _start_a_big_put(port: int, token: str) -> socket.socket:
    """A PUT that announces 1 GiB and sends 150 MiB of it, then keeps the connection open."""
    sock = socket.create_connection(("127.0.0.1", port))
    head = (
        f"PUT /api/files/big.bin?share=false HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Length: {1024**3}\r\n\r\n"
    )
    sock.sendall(head.encode())
    block = os.urandom(1024 * 1024)
    for _ in range(SENT // len(block)):
        sock.sendall(block)
    return sock


def _verify(env: dict[str, str], *extra: str) -> tuple[int, dict[str, object]]:
    result = run_satchel("storage", "verify", "--grace", "0", *extra, env=env, timeout=120)
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    verified = next(e for e in events if e.get("event") == "storage.verified")
    return result.returncode, verified


@pytest.mark.parametrize("store", ["file", "s3"])
def test_a_plain_upload_cut_short_by_a_killed_web_process_is_found_and_removed(
    store: str, base_env: dict[str, str], own_database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = {**base_env, "DATABASE_URL": own_database, "WEB_CONCURRENCY": "1"}
    if store == "s3":
        moto: MotoServer = request.getfixturevalue("moto_server")
        env |= moto.env(request.getfixturevalue("s3_bucket"))
    token = create_account(env, f"killed-{uuid.uuid4().hex[:8]}@example.test")
    web = SatchelProcess("web", env=env)
    web.wait_http(f"http://127.0.0.1:{env['PORT']}/healthz")
    sock = _start_a_big_put(int(env["PORT"]), token)
    time.sleep(1)  # let the server write what it received
    os.killpg(web.process.pid, signal.SIGKILL)
    web.wait(10)
    sock.close()

    code, found = _verify(env)
    assert code == 1, "interrupted bytes are something to fix"
    interrupted = found["interrupted"]
    assert isinstance(interrupted, list) and len(interrupted) == 1, found
    if store == "file":
        leftover = Path(env["STORAGE_URL"].removeprefix("file://")) / str(interrupted[0])
        assert leftover.stat().st_size > 50 * 1024 * 1024, "the half-written object is really there"

    code, fixed = _verify(env, "--fix")
    assert code == 0 and fixed["removed"] == interrupted
    code, after = _verify(env)
    assert code == 0 and after["interrupted"] == [] and after["orphans"] == []
    if store == "file":
        assert not [p for p in Path(env["STORAGE_URL"].removeprefix("file://")).rglob("*") if p.is_file()]
