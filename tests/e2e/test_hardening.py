"""Hostile or broken clients against real processes: answered, counted, logged, never a 500 or a hang."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from satchel.runtime.logging import configure_logging
from satchel.settings import load_settings
from satchel.web.app import create_app

from support.processes import SatchelProcess, create_account, running_web

Web = tuple[SatchelProcess, str]


@pytest.fixture
def web(base_env: dict[str, str]) -> Iterator[Web]:
    with running_web(base_env) as started:
        yield started


def _raw_request(port: int, head: bytes, body: bytes = b"", *, timeout: float = 10) -> bytes:
    """Send ``head`` and ``body`` from one thread while reading the answer in this one, until the server closes."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)

    def send() -> None:
        with contextlib.suppress(OSError):  # the server answered and closed before taking it all: the point
            sock.sendall(head + body)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    finally:
        sock.close()
        sender.join(timeout)
    return answer


# --- Request heads are capped --------------------------------------------------------------------


def test_a_request_head_above_the_limit_is_answered_431_quickly_and_closed(web: Web, base_env: dict[str, str]) -> None:
    process, _ = web
    head = b"GET /healthz HTTP/1.1\r\nHost: satchel.test\r\nX-Padding: " + b"a" * (16 * 1024**2) + b"\r\n\r\n"
    started = time.monotonic()
    answer = _raw_request(int(base_env["PORT"]), head)
    took = time.monotonic() - started

    status_line, _, rest = answer.partition(b"\r\n")
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert status_line == b"HTTP/1.1 431 Request Header Fields Too Large", answer[:300]
    assert b"content-type: application/problem+json" in headers.lower()
    assert b"connection: close" in headers.lower()
    assert json.loads(body)["status"] == 431
    assert took < 3, f"431 after {took:.2f}s"
    refused = process.wait_for_event("http.request_head_too_large")
    assert refused["level"] == "warning" and refused["limit"] == 64 * 1024


def test_while_two_clients_stream_128_mib_headers_healthz_keeps_answering_within_a_second(
    web: Web, base_env: dict[str, str]
) -> None:
    _, url = web
    port = int(base_env["PORT"])
    answers: list[bytes] = []

    def hostile() -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        try:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: satchel.test\r\nX-Flood: ")
            block = b"a" * 1024**2
            for _ in range(128):
                sock.sendall(block)
        except OSError:
            pass  # refused and closed mid-stream
        try:
            answers.append(sock.recv(4096))
        except OSError:
            answers.append(b"")
        finally:
            sock.close()

    floods = [threading.Thread(target=hostile) for _ in range(2)]
    for flood in floods:
        flood.start()
    slowest = 0.0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline or any(f.is_alive() for f in floods):
        started = time.monotonic()
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        slowest = max(slowest, time.monotonic() - started)
        assert time.monotonic() < deadline + 30, "the hostile clients were never cut off"
        time.sleep(0.05)
    for flood in floods:
        flood.join()
    assert slowest < 1, f"/healthz took {slowest:.2f}s while the heads streamed"
    assert all(a.startswith(b"HTTP/1.1 431 ") or a == b"" for a in answers), answers


def test_large_but_allowed_headers_and_a_body_above_the_limit_are_served(web: Web, base_env: dict[str, str]) -> None:
    _, url = web
    token = create_account(base_env, "big-headers@example.test")
    headers = {f"X-Large-{i}": "v" * 4000 for i in range(12)}  # ~48 KiB of head, under 64 KiB
    assert httpx.get(f"{url}/healthz", headers=headers).status_code == 200
    body = os.urandom(1024**2)  # bytes of the body never count toward the head
    upload = httpx.put(
        f"{url}/api/files/big.bin",
        content=body,
        headers={**headers, "Authorization": f"Bearer {token}"},
        params={"share": "false"},
        timeout=30,
    )
    assert upload.status_code == 201, upload.text
    assert upload.json()["file"]["size"] == len(body)


# --- Trusted proxies are explicit ----------------------------------------------------------------


def _password_share(url: str, token: str) -> str:
    auth = {"Authorization": f"Bearer {token}"}
    upload = httpx.put(f"{url}/api/files/secret.txt", content=b"secret", headers=auth, params={"share": "false"})
    assert upload.status_code == 201, upload.text
    share = httpx.post(
        f"{url}/api/shares", json={"file_ids": [upload.json()["file"]["id"]], "password": "open sesame"}, headers=auth
    )
    assert share.status_code == 201, share.text
    token_: str = share.json()["token"]
    return token_


def _wrong_password_tries(url: str, share: str, appended: str = "") -> list[int]:
    """Six wrong passwords from this machine, each claiming another client address (then ``appended``,
    as a proxy that adds the address it saw to what the client sent)."""
    return [
        httpx.get(
            f"{url}/s/{share}/download",
            headers={"X-Share-Password": "wrong guess", "X-Forwarded-For": f"203.0.113.{i}{appended}"},
        ).status_code
        for i in range(1, 7)
    ]


def _download_clients(process: SatchelProcess) -> list[str]:
    """The client address of each download's access line, once all six are logged."""

    def downloads() -> list[dict[str, Any]]:
        return [e for e in process.events_so_far() if e.get("path") == "/s/{token}/download"]

    process.wait_for(lambda: len(downloads()) == 6, what="six download access lines")
    return [e["client"] for e in downloads()]


def test_by_default_x_forwarded_for_is_ignored_so_rotating_it_does_not_escape_the_rate_limit(
    web: Web, base_env: dict[str, str]
) -> None:
    process, url = web
    share = _password_share(url, create_account(base_env, "rotating@example.test"))
    codes = _wrong_password_tries(url, share)
    assert codes[:5] == [401] * 5 and codes[5] == 429, codes
    assert set(_download_clients(process)) == {"127.0.0.1"}


def test_behind_a_trusted_proxy_forwarded_clients_are_counted_separately(base_env: dict[str, str]) -> None:
    env = {**base_env, "FORWARDED_ALLOW_IPS": "127.0.0.1"}
    with running_web(env) as (process, url):
        share = _password_share(url, create_account(env, "proxied@example.test"))
        assert _wrong_password_tries(url, share) == [401] * 6
        assert _download_clients(process) == [f"203.0.113.{i}" for i in range(1, 7)]


def test_behind_trusted_proxy_networks_the_address_a_proxy_appended_counts_not_the_clients_own(
    base_env: dict[str, str],
) -> None:
    """A platform router whose addresses change, trusted by network: the client is the rightmost untrusted entry."""
    env = {**base_env, "FORWARDED_ALLOW_IPS": "127.0.0.0/8,10.0.0.0/8"}
    with running_web(env) as (process, url):
        share = _password_share(url, create_account(env, "routed@example.test"))
        codes = _wrong_password_tries(url, share, appended=", 198.51.100.7, 10.1.2.3")
        assert codes[:5] == [401] * 5 and codes[5] == 429, codes
        assert set(_download_clients(process)) == {"198.51.100.7"}


# --- Disconnects and crashes are logged for what they are ----------------------------------------


def test_a_client_that_leaves_mid_upload_is_a_499_not_a_server_error(web: Web, base_env: dict[str, str]) -> None:
    process, _ = web
    token = create_account(base_env, "leaver@example.test")
    sock = socket.create_connection(("127.0.0.1", int(base_env["PORT"])), timeout=10)
    sock.sendall(
        b"PUT /api/files/half.bin?share=false HTTP/1.1\r\nHost: satchel.test\r\n"
        + f"Authorization: Bearer {token}\r\n".encode()
        + b"Content-Type: application/octet-stream\r\nContent-Length: 100000000\r\n\r\n"
    )
    for _ in range(4):
        sock.sendall(os.urandom(1024**2))
    time.sleep(0.5)  # the upload is under way
    sock.close()

    access = process.wait_for_event("http.client_disconnected")
    assert access["level"] == "info" and access["path"] == "/api/files/half.bin" and "request_id" in access
    process.wait_for(
        lambda: any(e.get("event") == "http.request" and e.get("status") == 499 for e in process.events_so_far()),
        what="the 499 access line",
    )
    time.sleep(0.5)  # anything the failure would log after the access line
    events = process.events_so_far()
    assert not [e for e in events if e.get("level") in ("error", "critical")], [
        e for e in events if e.get("level") in ("error", "critical")
    ]
    assert not [e for e in events if e.get("status") == 500]
    assert not any("Traceback" in line for line in process.lines + process.stderr_lines)


@pytest.fixture
def crashing_app(database_url: str, redis_url: str, tmp_path: Path) -> FastAPI:
    settings = load_settings(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        STORAGE_URL=f"file://{tmp_path / 'objects'}",
        SECRET_KEY="k" * 40,
        RELEASE_ID="test",
    )
    app = create_app(settings)

    @app.get("/api/boom")
    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("an unexpected failure at postgresql://satchel:pg-secret@db/satchel")

    return app


def _events(capfd: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith("{")]


@pytest.mark.usefixtures("restore_logging")
def test_an_unexpected_error_is_logged_once_with_the_request_id_and_answered_500_once(
    crashing_app: FastAPI, capfd: pytest.CaptureFixture[str]
) -> None:
    configure_logging(process="web", release="test")
    with TestClient(crashing_app) as client:
        capfd.readouterr()
        response = client.get("/api/boom", headers={"X-Request-ID": "crash-42"})
        page = client.get("/boom", headers={"Accept": "text/html"})
    events = _events(capfd)

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 500 and "Traceback" not in response.text
    assert response.headers["x-request-id"] == "crash-42"
    assert response.headers["x-content-type-options"] == "nosniff", "the answer passed the security headers"
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    assert "Something went wrong" in page.text and "Traceback" not in page.text

    crashes = [e for e in events if e["event"] == "http.unhandled_error"]
    assert [e["request_id"] for e in crashes] == ["crash-42", page.headers["x-request-id"]]
    assert [e for e in events if e["level"] == "error"] == crashes, "each crash is one error line, no second one"
    assert "RuntimeError: an unexpected failure" in crashes[0]["exception"]
    assert "pg-secret" not in crashes[0]["exception"]
    [access] = [e for e in events if e["event"] == "http.request" and e.get("request_id") == "crash-42"]
    assert access["status"] == 500


# --- A worker whose relay dies exits -------------------------------------------------------------


@pytest.mark.xdist_group("broker")
def test_a_worker_whose_relay_is_killed_exits_non_zero_and_says_why(
    base_env: dict[str, str], own_database: str
) -> None:
    parts = urlsplit(base_env["REDIS_URL"])
    broker = urlunsplit(parts._replace(path="/13" if parts.path != "/13" else "/12"))
    env = {**base_env, "DATABASE_URL": own_database, "BROKER_URL": broker, "WORKER_GRACE": "5"}
    worker = SatchelProcess("worker", "--concurrency", "1", env=env)
    try:
        worker.wait_for(lambda: any("ready" in line for line in worker.lines), what="worker ready")
        relay = worker.wait_for_event("relay.started")
        relay_pid = int(relay["worker"].rpartition(":")[2])  # the relay names itself host:pid
        os.kill(relay_pid, signal.SIGKILL)
        killed = time.monotonic()

        code = worker.wait(25)
        assert code != 0
        assert time.monotonic() - killed < 20
        died = [e for e in worker.events() if e["event"] == "relay.died"]
        assert died and died[0]["level"] == "error" and died[0]["exitcode"] == -signal.SIGKILL
    finally:
        worker.stop()
