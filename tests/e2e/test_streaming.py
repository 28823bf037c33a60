"""1 GiB up and down through a real `satchel web`: bytes stream, memory stays flat."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import httpx
import pytest

from support.memory import PeakRss
from support.processes import SatchelProcess, create_account

pytestmark = pytest.mark.timeout(600)
GiB = 1024**3
BLOCK = os.urandom(1024 * 1024)
RSS_LIMIT = 200 * 1024 * 1024


def _body(digest: hashlib._Hash) -> Iterator[bytes]:
    for _ in range(GiB // len(BLOCK)):
        digest.update(BLOCK)
        yield BLOCK


def test_one_gib_streams_up_and_down_in_flat_memory(base_env: dict[str, str], record_property: object) -> None:
    env = {**base_env, "WEB_CONCURRENCY": "1", "SATCHEL_MAX_UPLOAD_BYTES": str(2 * GiB)}
    token = create_account(env, "big@example.test")
    web = SatchelProcess("web", env=env)
    url = f"http://127.0.0.1:{env['PORT']}"
    try:
        web.wait_http(f"{url}/healthz")
        sent = hashlib.sha256()
        with PeakRss(web.process.pid) as upload_rss:
            response = httpx.put(
                f"{url}/api/files/big.bin",
                content=_body(sent),
                headers={"Authorization": f"Bearer {token}", "Content-Length": str(GiB)},
                timeout=300,
            )
        assert response.status_code == 201, response.text
        assert response.json()["file"]["sha256"] == sent.hexdigest()

        received, size = hashlib.sha256(), 0
        download = response.json()["share"]["url"] + "/download"
        with PeakRss(web.process.pid) as download_rss, httpx.stream("GET", download, timeout=300) as stream:
            for chunk in stream.iter_bytes(1024 * 1024):
                received.update(chunk)
                size += len(chunk)
        assert size == GiB and received.hexdigest() == sent.hexdigest()

        print(
            f"peak worker RSS: upload {upload_rss.peak / 2**20:.0f} MiB, download {download_rss.peak / 2**20:.0f} MiB"
        )
        assert upload_rss.peak < RSS_LIMIT, f"upload peak RSS {upload_rss.peak / 2**20:.0f} MiB"
        assert download_rss.peak < RSS_LIMIT, f"download peak RSS {download_rss.peak / 2**20:.0f} MiB"
    finally:
        web.stop()
