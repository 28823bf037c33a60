"""The files API on real PostgreSQL, Redis and file storage: upload, list, details, rename, delete."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from support.app import App, AppFactory


def _objects(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_put_upload_answers_with_the_file_and_a_ready_share_link(app: App) -> None:
    alice = app.account()
    data = os.urandom(300_000)
    body = app.upload(alice, "report.pdf", data)
    assert body["file"]["size"] == len(data)
    assert body["file"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["file"]["content_type"] == "application/pdf"
    assert body["share"]["url"].startswith("http://satchel.test/s/")
    downloaded = app.client.get(body["share"]["url"].removeprefix("http://satchel.test") + "/download")
    assert downloaded.status_code == 200 and downloaded.content == data


def test_put_with_share_false_only_stores_the_file(app: App) -> None:
    alice = app.account()
    assert app.upload(alice, "a.txt", b"a", share="false")["share"] is None


def test_multipart_upload_stores_every_file_part(app: App) -> None:
    alice = app.account()
    files = [("file", ("one.txt", b"first", "text/plain")), ("file", ("two.bin", os.urandom(70_000), None))]
    response = app.client.post("/api/files", files=files, data={"comment": "ignored"}, headers=alice.auth)
    assert response.status_code == 201, response.text
    items = response.json()["items"]
    assert [i["name"] for i in items] == ["one.txt", "two.bin"]
    assert items[0]["sha256"] == hashlib.sha256(b"first").hexdigest()


def test_upload_over_the_size_limit_is_413_and_leaves_nothing_behind(make_app: AppFactory, tmp_path: Path) -> None:
    with make_app(SATCHEL_MAX_UPLOAD_BYTES="100000") as app:
        alice = app.account()

        def body() -> Iterator[bytes]:  # streamed, no Content-Length: the limit holds while reading
            for _ in range(20):
                yield b"x" * 10_000

        response = app.client.put("/api/files/big.bin", content=body(), headers=alice.auth)
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert "Traceback" not in response.text
        assert _objects(tmp_path / "objects") == []
        assert app.client.get("/api/files", headers=alice.auth).json()["total"] == 0

        declared = app.client.put("/api/files/big.bin", content=b"x" * 100_001, headers=alice.auth)
        assert declared.status_code == 413, "refused on Content-Length, before reading the body"


def test_upload_over_quota_is_413_and_leaves_nothing_behind(app: App, tmp_path: Path) -> None:
    alice = app.account(quota=50_000)
    app.upload(alice, "fits.bin", b"y" * 40_000, share="false")
    response = app.client.put("/api/files/too-much.bin", content=b"z" * 20_000, headers=alice.auth)
    assert response.status_code == 413
    assert "quota" in response.json()["detail"]
    assert len(_objects(tmp_path / "objects")) == 1
    me = app.client.get("/api/me", headers=alice.auth).json()
    assert me["used_bytes"] == 40_000


def test_list_is_sorted_and_paginated(app: App) -> None:
    alice = app.account()
    for name, size in (("b.txt", 3), ("a.txt", 1), ("c.txt", 2)):
        app.upload(alice, name, b"x" * size, share="false")
    page = app.client.get("/api/files", params={"sort": "name", "limit": 2}, headers=alice.auth).json()
    assert [f["name"] for f in page["items"]] == ["a.txt", "b.txt"]
    assert page["total"] == 3 and page["limit"] == 2 and page["offset"] == 0
    rest = app.client.get("/api/files", params={"sort": "name", "limit": 2, "offset": 2}, headers=alice.auth).json()
    assert [f["name"] for f in rest["items"]] == ["c.txt"]
    by_size = app.client.get("/api/files", params={"sort": "-size"}, headers=alice.auth).json()
    assert [f["size"] for f in by_size["items"]] == [3, 2, 1]
    bad = app.client.get("/api/files", params={"sort": "owner"}, headers=alice.auth)
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"


def test_details_rename_and_delete(app: App, tmp_path: Path) -> None:
    alice = app.account()
    uploaded = app.upload(alice, "draft.txt", b"hello")
    file_id = uploaded["file"]["id"]
    details = app.client.get(f"/api/files/{file_id}", headers=alice.auth).json()
    assert details["name"] == "draft.txt" and len(details["shares"]) == 1

    renamed = app.client.patch(f"/api/files/{file_id}", json={"name": "../final.txt"}, headers=alice.auth)
    assert renamed.json()["name"] == "final.txt"

    assert app.client.get(f"/api/files/{file_id}/content", headers=alice.auth).content == b"hello"
    assert app.client.delete(f"/api/files/{file_id}", headers=alice.auth).status_code == 204
    assert app.client.get(f"/api/files/{file_id}", headers=alice.auth).status_code == 404
    assert _objects(tmp_path / "objects") == [], "the stored object went with the record"
    assert app.client.get("/api/me", headers=alice.auth).json()["used_bytes"] == 0
