"""The same product on S3 (a local S3-compatible server over HTTP): streamed, or presigned redirects."""

from __future__ import annotations

import hashlib
import os

import httpx

from support.app import AppFactory
from support.moto import MotoServer


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
