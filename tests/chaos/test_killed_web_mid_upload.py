"""A web process killed in the middle of receiving an upload loses nothing the client cannot resend.

Two `satchel web` processes share the database and storage behind a round-robin balancer. A tus
client (tuspy, unchanged) sends a 200 MiB file in 50 MiB requests; at a random point the process
receiving it is SIGKILLed. The client asks the balancer where the upload stands, which lands on
the other process, and carries on. Ten times in a row, every stored SHA-256 must equal the
source's, and `storage verify` must find nothing orphaned or half-written. The same holds, in two
rounds, for a stranger uploading through a password upload link.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
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
LINK_ROUNDS = 2


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


@dataclass
class Formation:
    """Two `satchel web` processes on one database and storage, behind a round-robin balancer."""

    env: dict[str, str]
    ports: list[int]
    processes: list[SatchelProcess]
    proxy: RoundRobinProxy

    def upload_killing_the_receiver(
        self, endpoint: str, headers: dict[str, str], source: Path, data: bytes, number: int
    ) -> tuple[Round, str]:
        """Send ``data`` with tuspy to ``endpoint`` through the balancer, SIGKILL the process receiving it at a
        random point, let the client finish through the other one; the round, and the file it became."""
        source.write_bytes(data)
        started = time.monotonic()
        client = TusClient(f"{self.proxy.url}{endpoint}", headers=headers)
        uploader = client.uploader(
            str(source), chunk_size=CHUNK, retries=30, retry_delay=1, metadata={"filename": f"round-{number}.bin"}
        )
        failure: list[BaseException] = []

        def upload() -> None:
            try:
                uploader.upload()
            except BaseException as exc:
                failure.append(exc)

        sent_before = self.proxy.bytes_sent()
        worker = threading.Thread(target=upload, daemon=True)
        worker.start()
        target = random.randint(SIZE // 10, SIZE * 9 // 10)
        deadline = time.monotonic() + 120
        while self.proxy.bytes_sent() - sent_before < target and worker.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        receiving = self.proxy.receiving()
        assert receiving is not None and worker.is_alive(), "the upload finished before it could be interrupted"
        victim = receiving.backend
        at = self.proxy.bytes_sent() - sent_before
        os.killpg(self.processes[victim].process.pid, signal.SIGKILL)
        self.processes[victim].wait(10)

        worker.join(180)
        assert not worker.is_alive() and not failure, failure
        file_id = uploader.request.response_headers["satchel-file-id"]
        self.processes[victim] = _start(self.env, self.ports[victim])  # back in the pool for the next round
        resent = self.proxy.bytes_sent() - sent_before - SIZE
        killed = f"web {'AB'[victim]}"
        return Round(number, killed, at, resent, False, time.monotonic() - started), file_id

    def verify_storage(self) -> None:
        verified = run_satchel("storage", "verify", "--deep", "--grace", "0", env=self.env, timeout=300)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert '"orphans": []' in verified.stdout and '"interrupted": []' in verified.stdout


@pytest.fixture
def formation(base_env: dict[str, str], own_database: str) -> Iterator[Formation]:
    env = {**base_env, "DATABASE_URL": own_database, "WEB_CONCURRENCY": "1", "GRACEFUL_TIMEOUT": "5"}
    ports = [free_port(), free_port()]
    processes: list[SatchelProcess] = []
    proxy = RoundRobinProxy([("127.0.0.1", port) for port in ports])
    try:
        processes.extend(_start(env, port) for port in ports)
        proxy.start()
        yield Formation(env, ports, processes, proxy)
    finally:
        proxy.stop()
        for process in processes:
            process.stop()


def _sha_of(formation: Formation, file_id: str, token: str, data: bytes) -> bool:
    stored = httpx.get(f"{formation.proxy.url}/api/files/{file_id}", headers={"Authorization": f"Bearer {token}"})
    assert stored.json()["size"] == SIZE
    return bool(stored.json()["sha256"] == hashlib.sha256(data).hexdigest())


def test_a_web_process_killed_mid_upload_ten_times_loses_nothing(formation: Formation, tmp_path: Path) -> None:
    token = create_account(formation.env, "chaos@example.test")
    base = os.urandom(SIZE)
    rounds: list[Round] = []
    for number in range(1, ROUNDS + 1):
        data = number.to_bytes(4, "big") + base[4:]  # a different file every round
        done, file_id = formation.upload_killing_the_receiver(
            "/api/uploads/", {"Authorization": f"Bearer {token}"}, tmp_path / "source.bin", data, number
        )
        done.sha_ok = _sha_of(formation, file_id, token, data)
        rounds.append(done)
        assert done.resent < CHUNK, "the client resumed where the stored bytes end, not from the start"
    _print_table(rounds)
    assert all(r.sha_ok for r in rounds)
    formation.verify_storage()


def test_a_web_process_killed_mid_upload_through_an_upload_link_loses_nothing(
    formation: Formation, tmp_path: Path
) -> None:
    """The same through a password upload link, by someone without an account: the link's own tus endpoint."""
    token = create_account(formation.env, "chaos-link@example.test")
    owner = {"Authorization": f"Bearer {token}"}
    asked = httpx.post(
        f"{formation.proxy.url}/api/requests", json={"max_files": LINK_ROUNDS, "password": "open sesame 42"},
        headers=owner,
    )  # fmt: skip
    assert asked.status_code == 201, asked.text
    link = asked.json()
    base = os.urandom(SIZE)
    rounds: list[Round] = []
    for number in range(1, LINK_ROUNDS + 1):
        data = number.to_bytes(4, "big") + base[4:]
        done, file_id = formation.upload_killing_the_receiver(
            f"/r/{link['token']}/uploads/",
            {"X-Request-Password": "open sesame 42"},
            tmp_path / "sent.bin",
            data,
            number,
        )
        done.sha_ok = _sha_of(formation, file_id, token, data)
        rounds.append(done)
        assert done.resent < CHUNK, "the client resumed where the stored bytes end, not from the start"
    _print_table(rounds)
    assert all(r.sha_ok for r in rounds)
    received = httpx.get(f"{formation.proxy.url}/api/requests/{link['id']}", headers=owner).json()
    assert (received["received_files"], received["received_bytes"], received["status"]) == (
        LINK_ROUNDS, LINK_ROUNDS * SIZE, "full",
    )  # fmt: skip
    formation.verify_storage()
