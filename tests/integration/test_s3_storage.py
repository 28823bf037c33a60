"""The same product on S3 (a local S3-compatible server over HTTP): streamed, or presigned redirects; and
streamed reads that survive a slow, stalled or cut connection without ever mixing two versions of an object."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from satchel.adapters.staging import part_size_for
from satchel.adapters.storage import ObjectChanged, ObstoreStorage, open_storage, s3_parts
from satchel.settings import load_settings

from support.app import AppFactory
from support.memory import PeakRss
from support.moto import ACCESS_KEY, REGION, SECRET_KEY, MotoServer
from support.processes import create_account, running_web
from support.proxy import FaultyLink


def test_upload_and_download_stream_through_s3(make_app: AppFactory, moto_server: MotoServer, s3_bucket: str) -> None:
    with make_app(**moto_server.env(s3_bucket)) as app:
        alice = app.account()
        data = os.urandom(12 * 1024 * 1024)  # above the multipart part size
        uploaded = app.upload(alice, "video.mp4", data, max_downloads=5)
        assert uploaded["file"]["sha256"] == hashlib.sha256(data).hexdigest()
        keys = [o["Key"] for o in moto_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"]]
        assert len(keys) == 1 and "video" not in keys[0], "object keys are generated, not the file's name"

        path = uploaded["share"]["url"].removeprefix("http://satchel.test") + "/download"
        whole = app.client.get(path)
        assert whole.status_code == 200 and whole.content == data
        part = app.client.get(path, headers={"Range": "bytes=9000000-9000099"})
        assert part.status_code == 206 and part.content == data[9_000_000:9_000_100]


def test_presigned_downloads_redirect_to_s3(make_app: AppFactory, moto_server: MotoServer, s3_bucket: str) -> None:
    with make_app(**moto_server.env(s3_bucket), SATCHEL_STORAGE_PRESIGN="true") as app:
        alice = app.account()
        share = app.upload(alice, "big report.pdf", b"%PDF- presigned bytes")["share"]
        response = app.client.get(
            share["url"].removeprefix("http://satchel.test") + "/download", follow_redirects=False
        )
        assert response.status_code == 302
        location = response.headers["location"]
        assert location.startswith(moto_server.endpoint) and "X-Amz-Signature" in location
        direct = httpx.get(location)
        assert direct.status_code == 200 and direct.content == b"%PDF- presigned bytes"
        assert direct.headers["content-disposition"].startswith("attachment;")
        counted = app.client.get(f"/api/shares/{share['id']}", headers=alice.auth).json()
        assert counted["download_count"] == 1


def test_a_failed_upload_leaves_no_object_in_the_bucket(
    make_app: AppFactory, moto_server: MotoServer, s3_bucket: str
) -> None:
    with make_app(**moto_server.env(s3_bucket), SATCHEL_MAX_UPLOAD_BYTES=str(8 * 1024 * 1024)) as app:
        alice = app.account()

        def body() -> object:
            for _ in range(12):
                yield os.urandom(1024 * 1024)

        response = app.client.put("/api/files/too-big.bin", content=body(), headers=alice.auth)
        assert response.status_code == 413
        listing = moto_server.client().list_objects_v2(Bucket=s3_bucket)
        assert listing.get("KeyCount", 0) == 0
        uploads = moto_server.client().list_multipart_uploads(Bucket=s3_bucket)
        assert not uploads.get("Uploads"), "the multipart upload was aborted"


MIB = 1024 * 1024


def _object(seed: int, size: int) -> bytes:
    """``size`` bytes that differ from MiB to MiB, so a misplaced or repeated piece changes them."""
    return b"".join(hashlib.sha256(f"{seed}-{i}".encode()).digest() * (MIB // 32) for i in range(size // MIB))


def _store_through(link: FaultyLink, bucket: str, **settings: Any) -> ObstoreStorage:
    """Satchel's S3 storage, reaching the S3 server through ``link``."""
    return open_storage(
        load_settings(
            database_url="postgresql://unused/unused", redis_url="redis://unused", secret_key="k" * 40,
            storage_url=f"s3://{bucket}", aws_endpoint_url=link.url, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, aws_region=REGION, **settings,
        )
    )  # fmt: skip


@contextmanager
def _link(moto_server: MotoServer, **faults: Any) -> Iterator[FaultyLink]:
    link = FaultyLink((moto_server.host, moto_server.port), **faults)
    link.start()
    try:
        yield link
    finally:
        link.stop()


async def _read_all(store: ObstoreStorage, key: str, into: bytearray | None = None) -> bytes:
    received = bytearray() if into is None else into
    async for piece in store.get_stream(key):
        received += piece
    return bytes(received)


def test_a_download_longer_than_the_storage_timeout_is_one_read_never_cut(
    moto_server: MotoServer, s3_bucket: str
) -> None:
    data = _object(1, 8 * MIB)
    moto_server.client().put_object(Bucket=s3_bucket, Key="slow.bin", Body=data)
    # 128 replies of 64 KiB, 30 ms apart: about 4 s in all, four times the timeout, yet never 1 s without a byte.
    with _link(moto_server, pause=0.03) as link:
        store = _store_through(link, s3_bucket, storage_timeout=1)
        assert asyncio.run(_read_all(store, "slow.bin")) == data
        assert link.connections == 1, "one GET, not cut by its length and resumed"


def test_a_stalled_download_is_given_up_after_the_timeout_and_resumed_where_it_stopped(
    moto_server: MotoServer, s3_bucket: str
) -> None:
    data = _object(2, 8 * MIB)
    moto_server.client().put_object(Bucket=s3_bucket, Key="stalls.bin", Body=data)
    with _link(moto_server, stall_after=3 * MIB, stall=3.0) as link:
        store = _store_through(link, s3_bucket, storage_timeout=1)
        assert asyncio.run(_read_all(store, "stalls.bin")) == data
        assert link.connections >= 2, "the stalled connection was given up for a new one"


def test_a_download_cut_again_and_again_resumes_from_the_offset_reached(
    moto_server: MotoServer, s3_bucket: str
) -> None:
    data = _object(3, 24 * MIB)
    moto_server.client().put_object(Bucket=s3_bucket, Key="cut.bin", Body=data)
    # More cuts than the object-store library retries on its own: Satchel's own resumption carries it through.
    with _link(moto_server, cut_after=3 * MIB, cuts=6) as link:
        store = _store_through(link, s3_bucket)
        assert asyncio.run(_read_all(store, "cut.bin")) == data
        assert link.cut == 6


def test_an_object_replaced_mid_download_fails_rather_than_mixing_two_versions(
    moto_server: MotoServer, s3_bucket: str
) -> None:
    old, new = _object(4, 16 * MIB), _object(5, 16 * MIB)
    client = moto_server.client()
    client.put_object(Bucket=s3_bucket, Key="replaced.bin", Body=old)

    def replace() -> None:
        client.put_object(Bucket=s3_bucket, Key="replaced.bin", Body=new)

    with _link(moto_server, cut_after=3 * MIB, cuts=1, on_cut=replace) as link:
        store = _store_through(link, s3_bucket)
        received = bytearray()
        with pytest.raises(ObjectChanged):
            asyncio.run(_read_all(store, "replaced.bin", received))
    assert len(received) < len(old) and bytes(received) == old[: len(received)], "only bytes of the old version"


def test_the_part_size_fits_the_largest_upload_allowed_in_ten_thousand_parts() -> None:
    assert s3_parts(10 * 1024**3) == (8 * MIB, 4), "the default limit: boto3-sized parts, four at a time"
    for limit in (10 * 1024**3, 200 * 1024**3, 1024**4, 5 * 1024**4):
        part, at_once = s3_parts(limit)
        assert part * 10_000 >= limit and part % MIB == 0
        assert part * at_once <= max(32 * MIB, part), "parts in flight stay within the memory budget"
    assert part_size_for(100 * 1024**3) == 11 * MIB, "resumable uploads size their parts the same way"


@pytest.mark.timeout(300)
def test_s3_uploads_and_downloads_stream_in_flat_memory(base_env: dict[str, str], moto_server: MotoServer) -> None:
    size = 256 * MIB
    bucket = moto_server.create_bucket(f"satchel-flat-{os.getpid()}")
    env = {**base_env, **moto_server.env(bucket), "WEB_CONCURRENCY": "1", "SATCHEL_MAX_UPLOAD_BYTES": str(2 * size)}
    token = create_account(env, "flat@example.test")
    block = os.urandom(MIB)
    with running_web(env) as (web, url):
        with PeakRss(web.process.pid) as upload_rss:
            response = httpx.put(
                f"{url}/api/files/big.bin", content=(block for _ in range(size // MIB)),
                headers={"Authorization": f"Bearer {token}", "Content-Length": str(size)}, timeout=240,
            )  # fmt: skip
        assert response.status_code == 201, response.text
        received = hashlib.sha256()
        link = response.json()["share"]["url"] + "/download"
        with PeakRss(web.process.pid) as download_rss, httpx.stream("GET", link, timeout=240) as stream:
            for chunk in stream.iter_bytes(MIB):
                received.update(chunk)
        assert received.hexdigest() == response.json()["file"]["sha256"]
    print(f"peak worker RSS: upload {upload_rss.peak / MIB:.0f} MiB, download {download_rss.peak / MIB:.0f} MiB")
    assert upload_rss.peak < 200 * MIB and download_rss.peak < 200 * MIB, "a 256 MiB file never sits in memory"
