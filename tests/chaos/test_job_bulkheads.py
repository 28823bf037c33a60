"""Queues are bulkheads and jobs survive their workers: the Procfile's formation under a stalled scanner
and a worker killed in the middle of talking to the mail server."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from satchel.runtime.embedded import EmbeddedRedis, free_port

from support import clamd as clamd_support
from support.processes import SatchelProcess, create_account
from support.smtp import smtp_server

pytestmark = pytest.mark.timeout(240)


def _env(base_env: dict[str, str], own_database: str, broker: EmbeddedRedis, **extra: str) -> dict[str, str]:
    return {
        **base_env,
        "DATABASE_URL": own_database,
        "BROKER_URL": broker.url,
        "SATCHEL_JOB_RECOVERY_INTERVAL": "1",
        "SATCHEL_SWEEP_INTERVAL": "0",
        "SATCHEL_PUBLIC_URL": "https://satchel.example.test",
        **extra,
    }


def _ready(process: SatchelProcess) -> None:
    process.wait_for(lambda: any("ready" in line for line in process.lines), what="worker ready")


def _started(process: SatchelProcess, kind: str) -> bool:
    return any(e.get("event") == "job.started" and e.get("kind") == kind for e in process.events_so_far())


def _jobs(database_url: str, kind: str) -> list[tuple[str, int]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT status, attempts FROM jobs WHERE kind = %s", [kind]).fetchall()


def _upload_and_invite(base: str, token: str, recipient: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    uploaded = httpx.put(f"{base}/api/files/minutes.txt", content=b"minutes", headers=auth, params={"share": "false"})
    assert uploaded.status_code == 201, uploaded.text
    file_id = uploaded.json()["file"]["id"]
    shared = httpx.post(f"{base}/api/shares", json={"file_ids": [file_id], "notify": [recipient]}, headers=auth)
    assert shared.status_code == 201, shared.text


def test_a_stalled_scanner_never_delays_mail(
    base_env: dict[str, str], own_database: str, owned_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    """The Procfile's ``worker`` and ``scan`` types, with a real clamd of this test's own frozen by SIGSTOP."""
    clamd_support.require()
    scanner = clamd_support.Clamd(tmp_path / "clamd", free_port())
    scanner.start()
    assert scanner.process is not None
    processes: list[SatchelProcess] = []
    with smtp_server() as mailbox:
        env = _env(base_env, own_database, owned_redis, CLAMAV_URL=scanner.url, EMAIL_URL=mailbox.url)
        try:
            os.kill(scanner.process.pid, signal.SIGSTOP)  # accepts connections, answers nothing
            token = create_account(env, "sender@example.test")
            web = SatchelProcess("web", env=env)
            worker = SatchelProcess("worker", "--queues", "default,mail", "--concurrency", "1", env=env)
            scan = SatchelProcess("worker", "--queues", "scan", "--no-relay", "--concurrency", "1", env=env)
            processes += [web, worker, scan]
            base = f"http://127.0.0.1:{env['PORT']}"
            web.wait_http(f"{base}/healthz")
            _ready(worker)
            _ready(scan)

            _upload_and_invite(base, token, "colleague@example.test")
            scan.wait_for(lambda: _started(scan, "scan"), what="the scan to start")
            worker.wait_for(lambda: mailbox.to("colleague@example.test") != [], timeout=30, what="the invitation")

            assert _jobs(own_database, "mail") == [("done", 1)]
            [(scan_status, _)] = _jobs(own_database, "scan")
            assert scan_status != "done", "the scanner was stalled all along: mail did not wait for it"
        finally:
            os.kill(scanner.process.pid, signal.SIGCONT)
            for process in processes:
                process.stop()
            scanner.stop()


def test_a_mail_worker_killed_mid_conversation_sends_the_message_once(
    base_env: dict[str, str], own_database: str, owned_redis: EmbeddedRedis
) -> None:
    """Like the ping job's proof, for mail: a worker dies while the mail server is still answering its
    recipient; another worker takes the job over, and the recipient gets one message."""
    with smtp_server(rcpt_delay=3) as mailbox:
        env = _env(base_env, own_database, owned_redis, EMAIL_URL=mailbox.url)
        token = create_account(env, "sender@example.test")
        web = SatchelProcess("web", env=env)
        workers = [SatchelProcess("worker", "--queues", "default,mail", "--concurrency", "1", env=env) for _ in "ab"]
        try:
            base = f"http://127.0.0.1:{env['PORT']}"
            web.wait_http(f"{base}/healthz")
            for worker in workers:
                _ready(worker)
            _upload_and_invite(base, token, "colleague@example.test")
            web.wait_for(lambda: mailbox.recipients_asked == 1, what="a worker to reach the mail server")
            [killed] = [w for w in workers if _started(w, "mail")]
            [survivor] = [w for w in workers if w is not killed]
            os.killpg(killed.process.pid, signal.SIGKILL)  # the worker, its pool and its relay, mid-conversation
            killed.wait(10)

            survivor.wait_for(lambda: mailbox.messages != [], timeout=60, what="the other worker to send it")
            time.sleep(2)  # a duplicate delivery would land now
            [message] = mailbox.messages
            assert message.rcpt_tos == ["colleague@example.test"]
            assert mailbox.recipients_asked == 2, "the killed worker never got past the recipient"
            assert _jobs(own_database, "mail") == [("done", 2)]
        finally:
            web.stop()
            for worker in workers:
                worker.stop()
