"""Resumable uploads (tus 1.0) on real PostgreSQL, Redis and storage: the protocol as a client sees it."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from satchel.adapters.db.schema import uploads

from support.app import Account, App, AppFactory
from support.moto import MotoServer

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = {**TUS, "Content-Type": "application/offset+octet-stream"}


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def create(app: App, who: Account, length: int, name: str = "movie.mp4", **extra: str) -> httpx.Response:
    headers = {**TUS, "Upload-Length": str(length), "Upload-Metadata": metadata(filename=name), **who.auth, **extra}
    return app.client.post("/api/uploads/", headers=headers)


def path_of(response: httpx.Response) -> str:
    return response.headers["location"].removeprefix("http://satchel.test")


def patch(app: App, who: Account, path: str, offset: int, data: bytes, **extra: str) -> httpx.Response:
    return app.client.patch(path, content=data, headers={**OCTETS, "Upload-Offset": str(offset), **who.auth, **extra})


def head(app: App, who: Account, path: str) -> httpx.Response:
    return app.client.head(path, headers={**TUS, **who.auth})


def staged(root: Path) -> list[Path]:
    folder = root / "uploads"
    return sorted(folder.iterdir()) if folder.exists() else []


def objects(root: Path) -> list[Path]:
    return sorted(p for p in (root / "files").rglob("*") if p.is_file()) if (root / "files").exists() else []


def upload_row(app: App, upload_id: str) -> dict[str, Any] | None:
    async def read() -> dict[str, Any] | None:
        async with app.services.database.engine.connect() as conn:
            row = (await conn.execute(sa.select(uploads).where(uploads.c.id == upload_id))).one_or_none()
            return dict(row._mapping) if row else None

    return app.call(read)


@pytest.fixture
def storage_root(tmp_path: Path) -> Path:
    return tmp_path / "objects"


def test_options_tells_the_version_extensions_size_limit_and_checksums(app: App) -> None:
    response = app.client.options("/api/uploads/")
    assert response.status_code == 204
    assert response.headers["tus-version"] == "1.0.0"
    assert set(response.headers["tus-extension"].split(",")) == {
        "creation", "creation-with-upload", "termination", "checksum", "expiration",
    }  # fmt: skip
    assert int(response.headers["tus-max-size"]) == app.services.settings.max_upload_bytes
    assert "sha1" in response.headers["tus-checksum-algorithm"].split(",")


def test_a_request_without_the_protocol_version_is_412(app: App) -> None:
    alice = app.account()
    response = app.client.post("/api/uploads/", headers={"Upload-Length": "10", **alice.auth})
    assert response.status_code == 412
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["tus-version"] == "1.0.0"


def test_an_upload_sent_in_pieces_becomes_a_file_with_its_sha256(app: App, storage_root: Path) -> None:
    alice = app.account()
    data = os.urandom(3 * 1024 * 1024 + 123)
    created = create(app, alice, len(data), "holiday.mp4")
    assert created.status_code == 201, created.text
    assert created.headers["tus-resumable"] == "1.0.0" and created.headers["upload-expires"].endswith("GMT")
    path = path_of(created)
    assert head(app, alice, path).headers["upload-offset"] == "0"

    offset = 0
    for piece in (data[:1_000_000], data[1_000_000:2_500_000], data[2_500_000:]):
        response = patch(app, alice, path, offset, piece)
        assert response.status_code == 204, response.text
        offset += len(piece)
        assert int(response.headers["upload-offset"]) == offset
    file_id = response.headers["satchel-file-id"]

    file = app.client.get(f"/api/files/{file_id}", headers=alice.auth).json()
    assert (file["name"], file["size"]) == ("holiday.mp4", len(data))
    assert file["sha256"] == hashlib.sha256(data).hexdigest()
    assert file["content_type"] == "video/mp4"
    assert app.client.get(f"/api/files/{file_id}/content", headers=alice.auth).content == data
    assert staged(storage_root) == [], "the staged bytes became the file's object, no copy left behind"
    assert len(objects(storage_root)) == 1
    done = head(app, alice, path)
    assert done.headers["upload-offset"] == str(len(data)) and done.headers["satchel-file-id"] == file_id
    assert app.client.get("/api/me", headers=alice.auth).json()["used_bytes"] == len(data)


def test_creation_with_upload_stores_the_first_bytes_in_the_same_request(app: App) -> None:
    alice = app.account()
    whole = create(app, alice, 5, "a.txt", **{"Content-Type": "application/offset+octet-stream"})
    assert whole.status_code == 201  # no body: created empty
    headers = {**OCTETS, "Upload-Length": "11", "Upload-Metadata": metadata(filename="hi.txt"), **alice.auth}
    response = app.client.post("/api/uploads/", content=b"hello world", headers=headers)
    assert response.status_code == 201 and response.headers["upload-offset"] == "11"
    file_id = response.headers["satchel-file-id"]
    assert app.client.get(f"/api/files/{file_id}/content", headers=alice.auth).content == b"hello world"


def test_bytes_at_the_wrong_offset_are_refused_with_409_and_change_nothing(app: App) -> None:
    alice = app.account()
    path = path_of(create(app, alice, 100))
    assert patch(app, alice, path, 0, b"x" * 40).status_code == 204
    refused = patch(app, alice, path, 10, b"y" * 10)
    assert refused.status_code == 409 and refused.headers["content-type"] == "application/problem+json"
    assert "40" in refused.json()["detail"]
    assert head(app, alice, path).headers["upload-offset"] == "40"


def test_bytes_beyond_the_declared_length_are_refused_and_the_offset_kept(app: App) -> None:
    alice = app.account()
    path = path_of(create(app, alice, 10))
    assert patch(app, alice, path, 0, b"x" * 11).status_code == 413

    def streamed() -> Iterator[bytes]:  # no Content-Length: refused while reading, none of it kept
        yield b"x" * 6
        yield b"x" * 6

    assert patch(app, alice, path, 0, streamed()).status_code == 413  # type: ignore[arg-type]
    assert head(app, alice, path).headers["upload-offset"] == "0"


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "md5"])
def test_a_matching_checksum_is_accepted(app: App, algorithm: str) -> None:
    alice = app.account()
    path = path_of(create(app, alice, 20))
    data = os.urandom(20)
    checksum = f"{algorithm} {base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"
    assert patch(app, alice, path, 0, data, **{"Upload-Checksum": checksum}).status_code == 204


def test_a_wrong_checksum_is_460_and_none_of_the_request_is_kept(app: App) -> None:
    alice = app.account()
    path = path_of(create(app, alice, 20))
    wrong = f"sha1 {base64.b64encode(hashlib.sha1(b'other').digest()).decode()}"
    response = patch(app, alice, path, 0, os.urandom(10), **{"Upload-Checksum": wrong})
    assert response.status_code == 460 and response.json()["title"] == "Checksum Mismatch"
    assert head(app, alice, path).headers["upload-offset"] == "0"
    unknown = patch(app, alice, path, 0, b"x", **{"Upload-Checksum": "crc32 AAAA"})
    assert unknown.status_code == 400


def test_bytes_must_be_sent_as_an_offset_stream(app: App) -> None:
    alice = app.account()
    path = path_of(create(app, alice, 5))
    headers = {**TUS, "Upload-Offset": "0", "Content-Type": "application/json", **alice.auth}
    assert app.client.patch(path, content=b"hello", headers=headers).status_code == 415


def test_termination_removes_the_staged_bytes(app: App, storage_root: Path) -> None:
    alice = app.account()
    path = path_of(create(app, alice, 100))
    patch(app, alice, path, 0, b"x" * 50)
    assert len(staged(storage_root)) == 1
    assert app.client.delete(path, headers={**TUS, **alice.auth}).status_code == 204
    assert staged(storage_root) == []
    assert head(app, alice, path).status_code == 404


def test_someone_elses_upload_is_not_found(app: App) -> None:
    alice, mallory = app.account(), app.account()
    path = path_of(create(app, alice, 10))
    assert head(app, mallory, path).status_code == 404
    assert patch(app, mallory, path, 0, b"x" * 10).status_code == 404
    assert app.client.delete(path, headers={**TUS, **mallory.auth}).status_code == 404
    assert head(app, alice, path).headers["upload-offset"] == "0"


def test_an_upload_id_that_cannot_exist_is_refused_without_a_query(app: App) -> None:
    alice = app.account()
    for bad in ("a%00b", "9" * 40, "ZZ" * 16):
        assert head(app, alice, f"/api/uploads/{bad}").status_code in (404, 422)


def test_an_upload_that_cannot_fit_is_refused_when_created(make_app: AppFactory) -> None:
    with make_app(SATCHEL_MAX_UPLOAD_BYTES="1000") as app:
        alice, small = app.account(), app.account(quota=500)
        assert create(app, alice, 1001).status_code == 413
        assert create(app, small, 600).status_code == 413
        empty = create(app, alice, 0)
        assert empty.status_code == 422 and "empty" in empty.json()["detail"]
        nameless = app.client.post("/api/uploads/", headers={**TUS, "Upload-Length": "5", **alice.auth})
        assert nameless.status_code == 422


def test_quota_taken_meanwhile_refuses_the_finished_upload_and_leaves_nothing(app: App, storage_root: Path) -> None:
    alice = app.account(quota=1000)
    path = path_of(create(app, alice, 600))
    patch(app, alice, path, 0, b"x" * 300)
    app.upload(alice, "other.bin", b"y" * 500, share="false")
    refused = patch(app, alice, path, 300, b"x" * 300)
    assert refused.status_code == 413
    assert staged(storage_root) == [] and len(objects(storage_root)) == 1
    assert app.client.get("/api/me", headers=alice.auth).json()["used_bytes"] == 500
    assert head(app, alice, path).status_code == 404


def test_an_abandoned_upload_expires_and_the_sweep_removes_its_bytes(app: App, storage_root: Path) -> None:
    alice = app.account()
    path = path_of(create(app, alice, 100))
    patch(app, alice, path, 0, b"x" * 30)
    upload_id = path.rsplit("/", 1)[-1]
    upload = upload_row(app, upload_id)
    assert upload is not None and upload["expires_at"] > datetime.now(UTC) + timedelta(hours=23)

    async def abandon() -> None:
        async with app.services.database.engine.begin() as conn:
            past = datetime.now(UTC) - timedelta(seconds=1)
            await conn.execute(sa.update(uploads).where(uploads.c.id == upload_id).values(expires_at=past))

    app.call(abandon)
    gone = head(app, alice, path)
    assert gone.status_code == 410 and gone.headers["content-type"] == "application/problem+json"
    dry = app.call(lambda: app.services.expiry.purge_expired(dry_run=True))
    assert dry.uploads == 1 and len(staged(storage_root)) == 1
    report = app.call(app.services.expiry.purge_expired)
    assert report.uploads == 1
    assert staged(storage_root) == [] and upload_row(app, upload_id) is None


def test_asking_where_an_upload_stands_finishes_one_whose_last_request_died(app: App) -> None:
    alice = app.account()
    data = os.urandom(5000)
    path = path_of(create(app, alice, len(data)))
    upload_id = path.rsplit("/", 1)[-1]

    async def receive_without_finishing() -> None:  # what a process killed right after the last byte leaves
        services = app.services
        async with services.uow() as uow:
            upload = await uow.uploads.get(upload_id)
        assert upload is not None

        async def body() -> Any:
            yield data

        async for point in services.storage.staging.write(upload_id, upload.staging, 0, body(), keep_partial=True):
            async with services.uow() as uow:
                await uow.uploads.advance(upload_id, from_offset=0, point=point, expires_at=upload.expires_at)
                await uow.commit()

    app.call(receive_without_finishing)
    response = head(app, alice, path)
    assert response.status_code == 200 and response.headers["upload-offset"] == str(len(data))
    file_id = response.headers["satchel-file-id"]
    assert app.client.get(f"/api/files/{file_id}/content", headers=alice.auth).content == data


def test_a_browser_session_must_send_its_csrf_header_to_write(app: App) -> None:
    alice = app.account()
    app.sign_in(alice)
    headers = {**TUS, "Upload-Length": "5", "Upload-Metadata": metadata(filename="a.txt")}
    assert app.client.post("/api/uploads/", headers=headers).status_code == 403
    csrf = app.csrf("/files")
    created = app.client.post("/api/uploads/", headers={**headers, "X-CSRF-Token": csrf})
    assert created.status_code == 201
    assert app.client.head(path_of(created), headers=TUS).status_code == 200, "reading needs no CSRF header"


def test_resumable_uploads_on_s3_use_multipart_parts_and_tails(
    make_app: AppFactory, moto_server: MotoServer, s3_bucket: str
) -> None:
    with make_app(**moto_server.env(s3_bucket)) as app:
        alice = app.account()
        data = os.urandom(19 * 1024 * 1024 + 7)
        path = path_of(create(app, alice, len(data), "video.mp4"))
        offset = 0
        for size in (3 * 1024 * 1024, 9 * 1024 * 1024, 2 * 1024 * 1024, len(data)):  # tails, then parts
            piece = data[offset : offset + size]
            response = patch(app, alice, path, offset, piece)
            assert response.status_code == 204, response.text
            offset += len(piece)
            if offset == len(data):
                break
        file_id = response.headers["satchel-file-id"]
        assert app.client.get(f"/api/files/{file_id}/content", headers=alice.auth).content == data
        s3 = moto_server.client()
        assert not s3.list_multipart_uploads(Bucket=s3_bucket).get("Uploads")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]]
        assert keys == [f"files/{keys[0].split('/', 1)[1]}"], "the file's object and nothing else: no tails left"
        report = app.call(lambda: app.services.storage_check.verify(grace=timedelta(0)))
        assert report.orphans == [] and report.interrupted == [], report  # (the database is shared with other tests)


def test_a_file_type_with_control_characters_is_not_stored(app: App) -> None:
    alice = app.account()
    headers = {
        **OCTETS, "Upload-Length": "5", "Upload-Metadata": metadata(filename="a.txt", filetype="text/plain\x00<x>"),
        **alice.auth,
    }  # fmt: skip
    created = app.client.post("/api/uploads/", content=b"hello", headers=headers)
    assert created.status_code == 201, created.text
    file = app.client.get(f"/api/files/{created.headers['satchel-file-id']}", headers=alice.auth).json()
    assert file["content_type"] == "text/plain", "a type that is not a plain media type is replaced by a guess"
