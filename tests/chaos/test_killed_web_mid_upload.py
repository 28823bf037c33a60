"""A web process killed in the middle of receiving an upload loses nothing the client cannot resend.

Two `satchel web` processes share the database and storage behind a round-robin balancer. A tus
client (tuspy, unchanged) sends a 200 MiB file in 50 MiB requests; at a random point the process
receiving it is SIGKILLed. The client asks the balancer where the upload stands, which lands on
the other process, and carries on. Ten times in a row, every stored SHA-256 must equal the
source's, and `storage verify` must find nothing orphaned or half-written.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tusclient.client import TusClient

from satchel.runtime.embedded import free_port

from support.processes import SatchelProcess, create_account, run_satchel
from support.proxy import RoundRobinProxy

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]

SIZE = 200 * 1024 * 1024
CHUNK = 50 * 1024 * 1024
ROUNDS = 10


@dataclass
class Round:
    number: int
    killed: str
    at_bytes: int
    resent: int  # bytes the client sent twice: what the killed process had not yet made durable
    sha_ok: bool
    seconds: float


def _start(env: dict[str, str], port: int) -> SatchelProcess:
    process = SatchelProcess("web", env={**env, "PORT": str(port)})
    process.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
    return process


def _print_table(rounds: list[Round]) -> None:
    print("\n round | killed | killed after | sent again | sha256 | seconds")
    print(" ------|--------|--------------|------------|--------|--------")
    for r in rounds:
        sha = "equal" if r.sha_ok else "DIFFERENT"
        print(
            f" {r.number:>5} | {r.killed:<6} | {r.at_bytes / 2**20:>8.1f} MiB | {r.resent / 2**20:>6.1f} MiB "
            f"| {sha:<6} | {r.seconds:>6.1f}"
        )


def test_a_web_process_killed_mid_upload_ten_times_loses_nothing(
    base_env: dict[str, str], own_database: str, tmp_path: Path
) -> None:
    env = {**base_env, "DATABASE_URL": own_database, "WEB_CONCURRENCY": "1", "GRACEFUL_TIMEOUT": "5"}
    token = create_account(env, "chaos@example.test")
    ports = [free_port(), free_port()]
    processes = [_start(env, port) for port in ports]
    proxy = RoundRobinProxy([("127.0.0.1", port) for port in ports])
    proxy.start()
    source = tmp_path / "source.bin"
    rounds: list[Round] = []
    try:
        base = os.urandom(SIZE)
        for number in range(1, ROUNDS + 1):
            data = number.to_bytes(4, "big") + base[4:]  # a different file every round
            source.write_bytes(data)
            started = time.monotonic()
            client = TusClient(f"{proxy.url}/api/uploads/", headers={"Authorization": f"Bearer {token}"})
            uploader = client.uploader(
                str(source), chunk_size=CHUNK, retries=30, retry_delay=1, metadata={"filename": f"round-{number}.bin"}
            )
            failure: list[BaseException] = []

            def upload(uploader: object = uploader, failure: list[BaseException] = failure) -> None:
                try:
                    uploader.upload()  # type: ignore[attr-defined]
                except BaseException as exc:
                    failure.append(exc)

            sent_before = proxy.bytes_sent()
            worker = threading.Thread(target=upload, daemon=True)
            worker.start()
            target = random.randint(SIZE // 10, SIZE * 9 // 10)
            deadline = time.monotonic() + 120
            while proxy.bytes_sent() - sent_before < target and worker.is_alive() and time.monotonic() < deadline:
                time.sleep(0.005)
            receiving = proxy.receiving()
            assert receiving is not None and worker.is_alive(), "the upload finished before it could be interrupted"
            victim = receiving.backend
            at = proxy.bytes_sent() - sent_before
            os.killpg(processes[victim].process.pid, signal.SIGKILL)
            processes[victim].wait(10)

            worker.join(180)
            assert not worker.is_alive() and not failure, failure
            file_id = uploader.request.response_headers["satchel-file-id"]
            processes[victim] = _start(env, ports[victim])  # back in the pool for the next round

            stored = httpx.get(f"{proxy.url}/api/files/{file_id}", headers={"Authorization": f"Bearer {token}"})
            sha_ok = stored.json()["sha256"] == hashlib.sha256(data).hexdigest()
            resent = proxy.bytes_sent() - sent_before - SIZE
            rounds.append(Round(number, f"web {'AB'[victim]}", at, resent, sha_ok, time.monotonic() - started))
            assert stored.json()["size"] == SIZE
            assert resent < CHUNK, "the client resumed where the stored bytes end, not from the start"
        _print_table(rounds)
        assert all(r.sha_ok for r in rounds)

        verified = run_satchel("storage", "verify", "--deep", "--grace", "0", env=env, timeout=300)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert '"orphans": []' in verified.stdout and '"interrupted": []' in verified.stdout
    finally:
        proxy.stop()
        for process in processes:
            process.stop()
