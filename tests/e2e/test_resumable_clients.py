"""Resumable uploads through a real `satchel web`, with a third-party tus client and with raw sockets: into one's
own account, and through an upload link by someone without one."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError

from support.processes import create_account, running_web

TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture
def web(base_env: dict[str, str]) -> Iterator[tuple[str, str]]:
    env = {**base_env, "SATCHEL_BODY_TIMEOUT": "2"}
    token = create_account(env, f"tus-{uuid.uuid4().hex[:8]}@example.test")
    with running_web(env) as (_, url):
        yield url, token


def _create(url: str, token: str, length: int, name: str) -> str:
    metadata = f"filename {base64.b64encode(name.encode()).decode()}"
    headers = {**TUS, "Upload-Length": str(length), "Upload-Metadata": metadata, "Authorization": f"Bearer {token}"}
    created = httpx.post(f"{url}/api/uploads/", headers=headers)
    assert created.status_code == 201, created.text
    return str(created.headers["location"])


def _offset(location: str, token: str) -> int:
    response = httpx.head(location, headers={**TUS, "Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    return int(response.headers["upload-offset"])


def _send_part_of_a_patch(location: str, token: str, length: int, data: bytes, *, then_wait: float = 0) -> bytes:
    """A PATCH that announces ``length`` bytes, sends ``data``, then (after ``then_wait``) reads or hangs up."""
    path = "/" + location.split("/", 3)[3]
    host, port = location.split("/")[2].split(":")
    head = (
        f"PATCH {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nTus-Resumable: 1.0.0\r\n"
        f"Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: {length}\r\n\r\n"
    )
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head.encode() + data)
        if not then_wait:
            time.sleep(0.5)  # let the bytes reach the server before the client vanishes
            return b""
        sock.settimeout(then_wait)
        return sock.recv(65536)


def test_a_third_party_tus_client_uploads_in_chunks_with_checksums(web: tuple[str, str], tmp_path: Path) -> None:
    url, token = web
    data = os.urandom(5 * 1024 * 1024 + 17)
    source = tmp_path / "lecture.mp4"
    source.write_bytes(data)
    client = TusClient(f"{url}/api/uploads/", headers={"Authorization": f"Bearer {token}"})
    uploader = client.uploader(
        str(source), chunk_size=1024 * 1024, upload_checksum=True, metadata={"filename": "lecture.mp4"}
    )
    uploader.upload()
    file_id = uploader.request.response_headers["satchel-file-id"]
    auth = {"Authorization": f"Bearer {token}"}
    file = httpx.get(f"{url}/api/files/{file_id}", headers=auth).json()
    assert file["sha256"] == hashlib.sha256(data).hexdigest() and file["name"] == "lecture.mp4"
    assert httpx.get(f"{url}/api/files/{file_id}/content", headers=auth).content == data


def test_a_client_that_vanishes_mid_request_resumes_after_the_bytes_that_arrived(
    web: tuple[str, str], tmp_path: Path
) -> None:
    url, token = web
    data = os.urandom(3 * 1024 * 1024)
    location = _create(url, token, len(data), "interrupted.bin")
    _send_part_of_a_patch(location, token, len(data), data[:1_000_000])
    deadline = time.monotonic() + 10
    while _offset(location, token) != 1_000_000 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _offset(location, token) == 1_000_000, "what arrived before the client vanished is kept"

    source = tmp_path / "interrupted.bin"
    source.write_bytes(data)
    client = TusClient(f"{url}/api/uploads/", headers={"Authorization": f"Bearer {token}"})
    uploader = client.uploader(str(source), url=location, chunk_size=1024 * 1024)
    assert uploader.offset == 1_000_000
    uploader.upload()
    file_id = uploader.request.response_headers["satchel-file-id"]
    stored = httpx.get(f"{url}/api/files/{file_id}", headers={"Authorization": f"Bearer {token}"}).json()
    assert stored["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_request_body_that_stalls_is_cut_and_what_arrived_is_kept(web: tuple[str, str]) -> None:
    url, token = web
    location = _create(url, token, 100_000, "slow.bin")
    started = time.monotonic()
    answer = _send_part_of_a_patch(location, token, 100_000, b"x" * 40_000, then_wait=15)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"application/problem+json" in answer
    assert time.monotonic() - started < 10, "cut after SATCHEL_BODY_TIMEOUT (2 s here), not left hanging"
    assert _offset(location, token) == 40_000


def test_a_third_party_tus_client_uploads_through_a_password_upload_link(web: tuple[str, str], tmp_path: Path) -> None:
    url, token = web
    owner = {"Authorization": f"Bearer {token}"}
    link = httpx.post(f"{url}/api/requests", json={"max_files": 1, "password": "open sesame 42"}, headers=owner)
    assert link.status_code == 201, link.text
    endpoint = f"{url}/r/{link.json()['token']}/uploads/"
    data = os.urandom(4 * 1024 * 1024 + 5)
    source = tmp_path / "statement.pdf"
    source.write_bytes(data)

    client = TusClient(endpoint, headers={"X-Request-Password": "open sesame 42"})  # no account, no token
    uploader = client.uploader(
        str(source), chunk_size=1024 * 1024, upload_checksum=True, metadata={"filename": "statement.pdf"}
    )
    uploader.upload()
    file_id = uploader.request.response_headers["satchel-file-id"]
    stored = httpx.get(f"{url}/api/files/{file_id}", headers=owner).json()
    assert stored["sha256"] == hashlib.sha256(data).hexdigest() and stored["name"] == "statement.pdf"
    received = httpx.get(f"{url}/api/requests/{link.json()['id']}", headers=owner).json()
    assert received["received_files"] == 1 and received["status"] == "full"

    again = TusClient(endpoint, headers={"X-Request-Password": "open sesame 42"}).uploader(
        str(source), chunk_size=1024 * 1024, metadata={"filename": "again.pdf"}
    )
    with pytest.raises(TusCommunicationError) as refused:  # the link asked for one file: it has it
        again.upload()
    assert refused.value.status_code == 410
