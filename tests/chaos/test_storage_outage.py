"""Object storage that goes away in the middle of an upload: a 503 the client can retry, never a 500."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from satchel.runtime.embedded import free_port

from support.app import AppFactory
from support.moto import MotoServer


@pytest.fixture
def owned_s3() -> Iterator[MotoServer]:
    """An S3-compatible server this test alone owns, so it may stop it."""
    server = MotoServer(port=free_port())
    server.start()
    yield server
    server.stop()


def _dying(server: MotoServer, chunks: int, *, after: int) -> Iterator[bytes]:
    for number in range(chunks):
        if number == after:
            server.stop()  # the store dies while the body is still arriving
        yield b"x" * (1024 * 1024)


def test_storage_dying_mid_upload_is_a_503_for_a_plain_upload_and_a_resumable_one(
    make_app: AppFactory, owned_s3: MotoServer
) -> None:
    bucket = owned_s3.create_bucket("outage")
    with make_app(**owned_s3.env(bucket), SATCHEL_STORAGE_TIMEOUT="3") as app:
        alice = app.account()
        metadata = f"filename {base64.b64encode(b'big.bin').decode()}"
        tus = {"Tus-Resumable": "1.0.0", **alice.auth}
        created = app.client.post(
            "/api/uploads/", headers={**tus, "Upload-Length": str(40 * 1024 * 1024), "Upload-Metadata": metadata}
        )
        assert created.status_code == 201, created.text

        put = app.client.put("/api/files/big.bin", content=_dying(owned_s3, 30, after=12), headers=alice.auth)
        assert put.status_code == 503, put.text
        assert put.headers["content-type"] == "application/problem+json" and "retry-after" in put.headers
        assert app.client.get("/api/files", headers=alice.auth).json()["total"] == 0

        patch = app.client.patch(
            created.headers["location"].removeprefix("http://satchel.test"),
            content=b"y" * (20 * 1024 * 1024),
            headers={**tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
        )
        assert patch.status_code == 503, patch.text
        assert patch.headers["content-type"] == "application/problem+json"
