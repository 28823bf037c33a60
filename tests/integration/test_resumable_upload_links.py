"""Resumable uploads (tus 1.0) through an upload link, on real PostgreSQL, Redis and file storage.

A stranger with the link sends a file in pieces; it becomes the owner's file, counted into the link, once.
Every rule of the link holds for these uploads as for a plain ``PUT``: its limits when an upload starts,
while it streams and atomically when it becomes a file, its password, its end. After every refusal the
storage and the database are checked to hold nothing of it: no staged bytes, no object, no row, no quota.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from satchel.adapters.db.schema import audit_events, jobs, upload_requests, uploads
from satchel.domain.clock import utcnow
from satchel.services.requests import Credentials
from satchel.services.uploads import Body

from support.app import Account, App, AppFactory

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = {**TUS, "Content-Type": "application/offset+octet-stream"}
PASSWORD = "open sesame 42"


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def ask(app: App, who: Account, **terms: Any) -> dict[str, Any]:
    response = app.client.post("/api/requests", json=terms, headers=who.auth)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@contextmanager
def stranger(app: App) -> Iterator[TestClient]:
    """The app's client as someone with no account: no token, none of the owner's cookies."""
    app.client.cookies.clear()
    yield app.client


def create(app: App, link: dict[str, Any], length: int, name: str = "scan.pdf", **extra: str) -> httpx.Response:
    headers = {**TUS, "Upload-Length": str(length), "Upload-Metadata": metadata(filename=name), **extra}
    return app.client.post(f"/r/{link['token']}/uploads/", headers=headers)


def started(app: App, link: dict[str, Any], length: int, name: str = "scan.pdf", **extra: str) -> str:
    created = create(app, link, length, name, **extra)
    assert created.status_code == 201, created.text
    return path_of(created)


def path_of(response: httpx.Response) -> str:
    return str(response.headers["location"]).removeprefix("http://satchel.test")


def patch(app: App, path: str, offset: int, data: Any, **extra: str) -> httpx.Response:
    return app.client.patch(path, content=data, headers={**OCTETS, "Upload-Offset": str(offset), **extra})


def head(app: App, path: str, **extra: str) -> httpx.Response:
    return app.client.head(path, headers={**TUS, **extra})


def staged(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "objects" / "uploads"
    return sorted(folder.iterdir()) if folder.exists() else []


def objects(tmp_path: Path) -> list[Path]:
    root = tmp_path / "objects" / "files"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def rows(app: App, request_id: int) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        async with app.services.database.engine.connect() as conn:
            found = await conn.execute(sa.select(uploads).where(uploads.c.request_id == request_id))
            return [dict(row._mapping) for row in found]

    return app.call(read)


def used_bytes(app: App, who: Account) -> int:
    return int(app.client.get("/api/me", headers=who.auth).json()["used_bytes"])


def received(app: App, who: Account, link: dict[str, Any]) -> dict[str, Any]:
    detail: dict[str, Any] = app.client.get(f"/api/requests/{link['id']}", headers=who.auth).json()
    return detail


def assert_nothing_left(app: App, tmp_path: Path, link: dict[str, Any]) -> None:
    """Of the link's unfinished uploads: no row, no staged bytes; and nothing orphaned or interrupted in storage."""
    assert [r["id"] for r in rows(app, link["id"]) if r["file_id"] is None] == []
    assert staged(tmp_path) == []
    report = app.call(lambda: app.services.storage_check.verify(grace=timedelta(0)))
    assert report.orphans == [] and report.interrupted == [], report


def set_link(app: App, link: dict[str, Any], **values: Any) -> None:
    async def update() -> None:
        async with app.services.database.engine.begin() as conn:
            await conn.execute(sa.update(upload_requests).where(upload_requests.c.id == link["id"]).values(**values))

    app.call(update)


# --- the protocol through a link ---------------------------------------------------------------------


def test_a_stranger_sends_a_file_in_pieces_and_it_becomes_the_owners_once(app: App, tmp_path: Path) -> None:
    owner = app.account()
    link = ask(app, owner, max_files=3, note="The scans, please.")
    data = os.urandom(2 * 1024 * 1024 + 321)
    with stranger(app):
        assert app.client.options(f"/r/{link['token']}/uploads/").headers["tus-extension"] == (
            "creation,creation-with-upload,termination,checksum,expiration"
        )
        created = create(app, link, len(data), "scans.pdf")
        assert created.status_code == 201, created.text
        assert created.headers["tus-resumable"] == "1.0.0" and created.headers["upload-expires"].endswith("GMT")
        path = path_of(created)
        assert path.startswith(f"/r/{link['token']}/uploads/")
        offset = 0
        for piece in (data[:700_000], data[700_000:1_900_000], data[1_900_000:]):
            assert head(app, path).headers["upload-offset"] == str(offset)
            response = patch(app, path, offset, piece)
            assert response.status_code == 204, response.text
            offset += len(piece)
        file_id = response.headers["satchel-file-id"]
        assert head(app, path).headers["satchel-file-id"] == file_id

    file = app.client.get(f"/api/files/{file_id}", headers=owner.auth).json()
    assert (file["name"], file["size"], file["sha256"]) == ("scans.pdf", len(data), hashlib.sha256(data).hexdigest())
    assert app.client.get(f"/api/files/{file_id}/content", headers=owner.auth).content == data
    detail = received(app, owner, link)
    assert (detail["received_files"], detail["received_bytes"]) == (1, len(data))
    assert [f["id"] for f in detail["files"]] == [file_id]
    assert used_bytes(app, owner) == len(data)
    assert staged(tmp_path) == [] and len(objects(tmp_path)) == 1

    async def trail_and_mail() -> tuple[int, int]:
        async with app.services.database.engine.connect() as conn:
            events = await conn.scalar(sa.select(sa.func.count()).where(audit_events.c.subject == f"file:{file_id}"))
            mails = [r for r in await conn.execute(sa.select(jobs.c.payload).where(jobs.c.kind == "mail"))]
        return int(events or 0), sum(1 for (payload,) in mails if payload.get("file_id") == file_id)

    assert app.call(trail_and_mail) == (1, 1), "one audit event and one mail to the owner, as for a plain PUT"


def test_creation_with_upload_and_a_checksum_takes_a_small_file_in_one_request(app: App) -> None:
    owner = app.account()
    link = ask(app, owner)
    data = b"hello through the link"
    checksum = f"sha256 {base64.b64encode(hashlib.sha256(data).digest()).decode()}"
    with stranger(app):
        response = app.client.post(
            f"/r/{link['token']}/uploads/",
            content=data,
            headers={**OCTETS, "Upload-Length": str(len(data)), "Upload-Metadata": metadata(filename="hi.txt"),
                     "Upload-Checksum": checksum},
        )  # fmt: skip
        assert response.status_code == 201 and response.headers["upload-offset"] == str(len(data))
        path = started(app, link, 10, "other.txt")
        wrong = f"sha1 {base64.b64encode(hashlib.sha1(b'other').digest()).decode()}"
        mismatch = patch(app, path, 0, b"0123456789", **{"Upload-Checksum": wrong})
        assert mismatch.status_code == 460 and head(app, path).headers["upload-offset"] == "0"
        unversioned = app.client.head(path)
    file_id = response.headers["satchel-file-id"]
    assert app.client.get(f"/api/files/{file_id}/content", headers=owner.auth).content == data
    assert unversioned.status_code == 412 and unversioned.headers["tus-version"] == "1.0.0"


def test_termination_through_the_link_removes_the_staged_bytes(app: App, tmp_path: Path) -> None:
    owner = app.account()
    link = ask(app, owner)
    with stranger(app):
        path = started(app, link, 100)
        assert patch(app, path, 0, b"x" * 40).status_code == 204
        assert len(staged(tmp_path)) == 1
        assert app.client.delete(path, headers=TUS).status_code == 204
        assert head(app, path).status_code == 404
    assert_nothing_left(app, tmp_path, link)
    assert received(app, owner, link)["received_files"] == 0


# --- the link's limits: at creation, while streaming, at completion ---------------------------------


def test_an_upload_the_link_its_owner_or_the_server_cannot_take_is_refused_at_creation_saying_which(
    make_app: AppFactory, tmp_path: Path
) -> None:
    with make_app(SATCHEL_MAX_UPLOAD_BYTES="10000") as app:
        owner, small = app.account(), app.account(quota=500)
        sized, roomy, full = ask(app, owner, max_bytes=1000), ask(app, owner), ask(app, owner, max_files=1)
        small_link = ask(app, small)
        with stranger(app):
            assert app.client.put(f"/r/{full['token']}/files/only.txt", content=b"only").status_code == 201
            refusals = {
                "link": create(app, sized, 1001),
                "quota": create(app, small_link, 501),
                "server": create(app, roomy, 10_001),
                "full": create(app, full, 10),
                "empty": create(app, roomy, 0),
            }
        for why, response in refusals.items():
            assert response.headers["content-type"] == "application/problem+json", why
        assert refusals["link"].status_code == 413 and "still accepts" in refusals["link"].json()["detail"]
        assert refusals["quota"].status_code == 413 and "quota" in refusals["quota"].json()["detail"]
        assert refusals["server"].status_code == 413 and "server" in refusals["server"].json()["detail"]
        assert refusals["full"].status_code == 410 and "all it asked for" in refusals["full"].json()["detail"]
        assert refusals["empty"].status_code == 422
        for link in (sized, roomy, full, small_link):
            assert rows(app, link["id"]) == []
        assert staged(tmp_path) == [] and used_bytes(app, small) == 0


def test_bytes_past_the_upload_length_are_refused_while_streaming_and_none_are_kept(app: App, tmp_path: Path) -> None:
    owner = app.account()
    link = ask(app, owner, max_bytes=50)
    with stranger(app):
        path = started(app, link, 20)
        assert patch(app, path, 0, b"x" * 21).status_code == 413

        def streamed() -> Iterator[bytes]:  # no Content-Length: only counting while it streams can stop it
            yield b"y" * 15
            yield b"y" * 15

        assert patch(app, path, 0, streamed()).status_code == 413
        assert head(app, path).headers["upload-offset"] == "0"
        assert patch(app, path, 0, b"z" * 20).status_code == 204
    assert received(app, owner, link)["received_bytes"] == 20


def test_an_upload_the_link_has_no_room_left_for_is_refused_and_removed_at_its_next_request(
    app: App, tmp_path: Path
) -> None:
    owner = app.account()
    link = ask(app, owner, max_bytes=1000)
    with stranger(app):
        path = started(app, link, 800)
        assert patch(app, path, 0, b"a" * 300).status_code == 204
        assert app.client.put(f"/r/{link['token']}/files/other.bin", content=b"b" * 300).status_code == 201
        refused = patch(app, path, 300, b"a" * 500)  # 700 left: the upload's 800 can no longer come in
        assert refused.status_code == 413 and "still accepts" in refused.json()["detail"]
        assert head(app, path).status_code == 404
    assert_nothing_left(app, tmp_path, link)
    assert used_bytes(app, owner) == 300 and len(objects(tmp_path)) == 1


def test_two_uploads_racing_for_the_links_last_file_let_exactly_one_through(app: App, tmp_path: Path) -> None:
    owner = app.account()
    link = ask(app, owner, max_files=1)
    size = 3 * 1024 * 1024
    data = {n: os.urandom(size) for n in (1, 2)}
    with stranger(app):
        paths = {n: started(app, link, size, f"{n}.bin") for n in data}
        for n, path in paths.items():
            assert patch(app, path, 0, data[n][:1000]).status_code == 204
        results: dict[int, httpx.Response] = {}
        start = threading.Barrier(2)

        def finish(n: int) -> None:  # the rest in one request each, at once: both complete together
            start.wait()
            results[n] = patch(app, paths[n], 1000, data[n][1000:])

        threads = [threading.Thread(target=finish, args=(n,)) for n in data]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    statuses = sorted(r.status_code for r in results.values())
    assert statuses == [204, 410], {n: r.text for n, r in results.items()}
    [winner] = [n for n, r in results.items() if r.status_code == 204]
    [refused] = [r for r in results.values() if r.status_code == 410]
    assert "all it asked for" in refused.json()["detail"]
    file_id = results[winner].headers["satchel-file-id"]
    assert app.client.get(f"/api/files/{file_id}/content", headers=owner.auth).content == data[winner]
    assert received(app, owner, link)["received_files"] == 1 and used_bytes(app, owner) == size
    assert len(objects(tmp_path)) == 1
    assert_nothing_left(app, tmp_path, link)


def test_when_both_completions_reach_the_take_only_one_becomes_a_file(app: App, tmp_path: Path) -> None:
    """The race decided where it must be: both uploads were let in while the link had room, both bytes are all
    in, and only the atomic take as each file is recorded can tell them apart."""
    owner = app.account()
    link = ask(app, owner, max_files=1)
    with stranger(app):
        paths = [started(app, link, 10, f"{n}.txt") for n in (1, 2)]
    ids = [path.rsplit("/", 1)[-1] for path in paths]

    async def race() -> list[object]:
        both_in = asyncio.Event()
        arrived = 0

        async def last_bytes() -> AsyncIterator[bytes]:
            nonlocal arrived
            arrived += 1
            if arrived == 2:
                both_in.set()
            await both_in.wait()  # neither finishes before both were let in
            yield b"0123456789"

        async def send(upload_id: str) -> object:
            return await app.services.request_uploads.append(
                link["token"], upload_id, Credentials(), client="192.0.2.1", offset=0, body=Body(last_bytes())
            )

        return await asyncio.gather(*(send(upload_id) for upload_id in ids), return_exceptions=True)

    outcomes = app.call(race)
    assert sorted(type(o).__name__ for o in outcomes) == ["RequestFull", "UploadState"], outcomes
    assert received(app, owner, link)["received_files"] == 1 and used_bytes(app, owner) == 10
    assert len(objects(tmp_path)) == 1
    assert_nothing_left(app, tmp_path, link)


# --- a link that ends mid-upload ----------------------------------------------------------------------


@pytest.mark.parametrize("end", ["revoked", "expired", "full"])
def test_a_link_that_ends_mid_upload_answers_410_and_its_next_request_removes_the_upload(
    app: App, tmp_path: Path, end: str
) -> None:
    owner = app.account()
    link = ask(app, owner, max_files=2)
    with stranger(app):
        path = started(app, link, 100)
        assert patch(app, path, 0, b"x" * 60).status_code == 204
        assert len(staged(tmp_path)) == 1
    if end == "revoked":
        assert app.client.delete(f"/api/requests/{link['id']}", headers=owner.auth).status_code == 204
    elif end == "expired":
        set_link(app, link, expires_at=utcnow() - timedelta(seconds=1))
    else:
        with stranger(app):
            for n in (1, 2):
                assert app.client.put(f"/r/{link['token']}/files/{n}.txt", content=b"n").status_code == 201
    with stranger(app):
        gone = patch(app, path, 60, b"x" * 40)
        assert gone.status_code == 410 and gone.headers["content-type"] == "application/problem+json"
        assert head(app, path).status_code == 410  # the link's state, asked again: still gone
    assert_nothing_left(app, tmp_path, link)
    assert used_bytes(app, owner) == (2 if end == "full" else 0)


def test_an_uploader_who_never_comes_back_leaves_the_upload_to_the_sweep(app: App, tmp_path: Path) -> None:
    owner = app.account()
    link, other = ask(app, owner), ask(app, owner)
    with stranger(app):
        path = started(app, link, 100)
        assert patch(app, path, 0, b"x" * 30).status_code == 204
        alive = started(app, other, 100)
    assert app.client.delete(f"/api/requests/{link['id']}", headers=owner.auth).status_code == 204
    assert len(staged(tmp_path)) == 2

    dry = app.call(lambda: app.services.expiry.purge_expired(dry_run=True))
    assert dry.uploads >= 1 and len(staged(tmp_path)) == 2 and len(rows(app, link["id"])) == 1
    report = app.call(app.services.expiry.purge_expired)
    assert report.uploads >= 1
    assert rows(app, link["id"]) == [], "removed at the next sweep, not a day later when it would expire"
    assert [r["id"] for r in rows(app, other["id"])] == [alive.rsplit("/", 1)[-1]], "an open link's upload stays"
    assert len(staged(tmp_path)) == 1
    with stranger(app):
        assert head(app, path).status_code == 410


def test_a_finished_upload_still_names_its_file_after_it_filled_the_link(app: App) -> None:
    owner = app.account()
    link = ask(app, owner, max_files=1)
    with stranger(app):
        path = started(app, link, 5)
        done = patch(app, path, 0, b"hello")
        again = head(app, path)  # a client whose last answer was lost asks where it stands
    assert done.status_code == 204 and again.status_code == 200
    assert again.headers["satchel-file-id"] == done.headers["satchel-file-id"]


# --- who may reach an upload ----------------------------------------------------------------------------


def test_an_upload_is_reached_only_through_its_own_link(app: App, tmp_path: Path) -> None:
    owner, other = app.account(), app.account()
    link, sibling, strangers = ask(app, owner), ask(app, owner), ask(app, other)
    own = app.client.post(
        "/api/uploads/", headers={**TUS, "Upload-Length": "10", "Upload-Metadata": metadata(filename="o"), **owner.auth}
    )
    own_id = path_of(own).rsplit("/", 1)[-1]
    with stranger(app):
        path = started(app, link, 10)
    upload_id = path.rsplit("/", 1)[-1]
    elsewhere = [f"/r/{sibling['token']}/uploads/{upload_id}", f"/r/{strangers['token']}/uploads/{upload_id}"]
    for where in elsewhere:
        with stranger(app):
            assert head(app, where).status_code == 404
            assert patch(app, where, 0, b"x" * 10).status_code == 404
            assert app.client.delete(where, headers=TUS).status_code == 404
    by_owner = f"/api/uploads/{upload_id}"
    assert app.client.head(by_owner, headers={**TUS, **owner.auth}).status_code == 404
    assert patch(app, by_owner, 0, b"x" * 10, **owner.auth).status_code == 404
    assert app.client.delete(by_owner, headers={**TUS, **owner.auth}).status_code == 404
    with stranger(app):
        assert head(app, f"/r/{link['token']}/uploads/{own_id}").status_code == 404, "nor the owner's own upload"
        assert head(app, path).headers["upload-offset"] == "0"
        assert head(app, f"/r/{'A' * 32}/uploads/{upload_id}").status_code == 404
    assert len(staged(tmp_path)) == 2, "nothing was removed by any of them"


def test_a_password_link_takes_its_password_with_every_request(app: App) -> None:
    owner = app.account()
    link = ask(app, owner, password=PASSWORD)
    right, wrong = {"X-Request-Password": PASSWORD}, {"X-Request-Password": "nope"}
    with stranger(app):
        assert create(app, link, 100).status_code == 401
        assert create(app, link, 100, **wrong).status_code == 401
        path = started(app, link, 100, **right)
        assert patch(app, path, 0, b"x" * 10).status_code == 401
        assert patch(app, path, 0, b"x" * 10, **wrong).status_code == 401
        assert head(app, path).status_code == 401 and app.client.delete(path, headers=TUS).status_code == 401
        for n in range(9):  # one file in many requests is not held back by the limit on password guesses
            assert patch(app, path, n * 10, b"x" * 10, **right).status_code == 204
        done = patch(app, path, 90, b"x" * 10, **right)
    assert done.status_code == 204 and "satchel-file-id" in done.headers


def test_a_browser_that_unlocked_the_link_uploads_with_its_csrf_token_only(app: App) -> None:
    owner = app.account()
    link = ask(app, owner, password=PASSWORD)
    with stranger(app) as browser:
        csrf = App(browser).csrf(f"/r/{link['token']}")
        unlocked = browser.post(
            f"/r/{link['token']}/unlock", data={"password": PASSWORD, "csrf_token": csrf}, follow_redirects=False
        )
        assert unlocked.status_code == 303
        page = browser.get(f"/r/{link['token']}").text
        token = page.split('name="csrf-token" content="')[1].split('"')[0]
        assert f'data-request-uploads="/r/{link["token"]}/uploads/"' in page
        assert create(app, link, 10).status_code == 403, "another site's page cannot use the session"
        path = started(app, link, 10, **{"X-CSRF-Token": token})
        assert patch(app, path, 0, b"x" * 10).status_code == 403
        done = patch(app, path, 0, b"x" * 10, **{"X-CSRF-Token": token})
    assert done.status_code == 204 and "satchel-file-id" in done.headers


def test_starting_uploads_is_rate_limited_per_client_but_sending_their_bytes_is_not(app: App) -> None:
    owner = app.account()
    link = ask(app, owner)
    with stranger(app):
        paths = [started(app, link, 10, f"{n}.txt") for n in range(60)]
        refused = create(app, link, 10)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        for path in paths[:3]:
            for offset in range(0, 10, 2):
                assert patch(app, path, offset, b"ab").status_code == 204
    assert received(app, owner, link)["received_files"] == 3
