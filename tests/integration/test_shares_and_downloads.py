"""Share links and what anyone holding one gets: limits, passwords, expiry, ranges, zips."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from datetime import datetime, timedelta

import sqlalchemy as sa

from satchel.adapters.db.schema import shares

from support.app import App, AppFactory


def _path(url: str) -> str:
    return url.removeprefix("http://satchel.test")


def test_share_page_and_download_need_no_login(app: App) -> None:
    alice = app.account()
    share = app.upload(alice, "notes.txt", b"shared notes")["share"]
    page = app.client.get(_path(share["url"]), headers={"Accept": "text/html"})
    assert page.status_code == 200 and "notes.txt" in page.text
    file_id = share["files"][0]["id"]
    response = app.client.get(_path(share["url"]) + f"/files/{file_id}")
    assert response.status_code == 200 and response.content == b"shared notes"


def test_download_headers_are_correct_and_never_inline(app: App) -> None:
    alice = app.account()
    data = b"<html><script>alert(1)</script></html>"
    share = app.upload(alice, 'r\u00e9sum\u00e9 "final"/v2.html', data, share="true")["share"]
    response = app.client.get(_path(share["url"]) + "/download")
    assert response.headers["content-type"].startswith("text/html")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''v2.html" in disposition, "slashes never reach the name"
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]


def test_unicode_and_quotes_in_names_follow_rfc_6266(app: App) -> None:
    alice = app.account()
    share = app.upload(alice, 'r\u00e9sum\u00e9 "final".pdf', b"pdf")["share"]
    disposition = app.client.get(_path(share["url"]) + "/download").headers["content-disposition"]
    assert disposition == (
        "attachment; filename=\"r_sum_ _final_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf"
    )


def test_ranges_are_served_and_invalid_ranges_are_416(app: App) -> None:
    alice = app.account()
    data = os.urandom(1_000_000)
    url = _path(app.upload(alice, "data.bin", data, max_downloads=10)["share"]["url"]) + "/download"
    part = app.client.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    tail = app.client.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == data[-10:]
    assert app.client.get(url, headers={"Range": f"bytes={len(data)}-"}).status_code == 416


def test_second_download_of_single_use_share_is_refused_with_a_readable_page(app: App) -> None:
    alice = app.account()
    url = _path(app.upload(alice, "once.txt", b"once", max_downloads=1)["share"]["url"])
    assert app.client.get(url + "/download").status_code == 200
    again = app.client.get(url + "/download")
    assert again.status_code == 410 and again.headers["content-type"] == "application/problem+json"
    page = app.client.get(url, headers={"Accept": "text/html"})
    assert page.status_code == 410 and "text/html" in page.headers["content-type"]
    assert "download limit" in page.text


def test_a_wrong_file_id_does_not_use_up_a_download(app: App) -> None:
    alice = app.account()
    share = app.upload(alice, "once.txt", b"once", max_downloads=1)["share"]
    assert app.client.get(_path(share["url"]) + "/files/nope").status_code == 404
    assert app.client.get(_path(share["url"]) + "/download").status_code == 200


def test_password_protected_share_needs_its_password(app: App) -> None:
    alice = app.account()
    file_id = app.upload(alice, "secret.txt", b"s3cret", share="false")["file"]["id"]
    share = app.share(alice, [file_id], password="open sesame", note="for Bob")
    url = _path(share["url"])
    assert share["has_password"] is True
    page = app.client.get(url, headers={"Accept": "text/html"})
    assert "secret.txt" not in page.text, "nothing is listed before unlocking"
    assert app.client.get(url + "/download").status_code == 401
    assert app.client.get(url + "/download", headers={"X-Share-Password": "wrong"}).status_code == 401
    ok = app.client.get(url + "/download", headers={"X-Share-Password": "open sesame"})
    assert ok.status_code == 200 and ok.content == b"s3cret"


def test_password_form_unlocks_the_share_for_the_browser_session(app: App) -> None:
    alice = app.account()
    file_id = app.upload(alice, "secret.txt", b"s3cret", share="false")["file"]["id"]
    url = _path(app.share(alice, [file_id], password="open sesame")["url"])
    token = app.csrf(url)
    wrong = app.client.post(url + "/unlock", data={"password": "nope", "csrf_token": token})
    assert wrong.status_code == 401
    unlocked = app.client.post(url + "/unlock", data={"password": "open sesame", "csrf_token": token})
    assert unlocked.status_code == 200 and "secret.txt" in unlocked.text
    assert app.client.get(url + "/download").content == b"s3cret"


def test_password_attempts_are_rate_limited(app: App) -> None:
    alice = app.account()
    file_id = app.upload(alice, "secret.txt", b"s3cret", share="false")["file"]["id"]
    url = _path(app.share(alice, [file_id], password="open sesame")["url"]) + "/download"
    codes = [app.client.get(url, headers={"X-Share-Password": f"guess {i}"}).status_code for i in range(7)]
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]
    limited = app.client.get(url, headers={"X-Share-Password": "open sesame"})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0


def test_expired_and_revoked_shares_answer_410(app: App) -> None:
    alice = app.account()
    expired = app.upload(alice, "old.txt", b"old")["share"]

    async def expire() -> None:
        async with app.services.database.engine.begin() as conn:
            await conn.execute(
                sa.update(shares).where(shares.c.id == expired["id"]).values(expires_at=sa.func.now() - timedelta(1))
            )

    app.call(expire)
    assert app.client.get(_path(expired["url"]) + "/download").status_code == 410
    revoked = app.upload(alice, "new.txt", b"new")["share"]
    assert app.client.delete(f"/api/shares/{revoked['id']}", headers=alice.auth).status_code == 204
    response = app.client.get(_path(revoked["url"]), headers={"Accept": "text/html"})
    assert response.status_code == 410 and "revoked" in response.text
    listed = {s["id"]: s["status"] for s in app.client.get("/api/shares", headers=alice.auth).json()["items"]}
    assert listed == {expired["id"]: "expired", revoked["id"]: "revoked"}


def test_revoking_is_deleting_the_link_not_its_record_the_owner_still_reads_it_as_revoked(app: App) -> None:
    alice, bob = app.account(), app.account()
    share = app.upload(alice, "notes.txt", b"notes")["share"]
    assert app.client.delete(f"/api/shares/{share['id']}", headers=alice.auth).status_code == 204
    assert app.client.delete(f"/api/shares/{share['id']}", headers=alice.auth).status_code == 204, "idempotent"
    kept = app.client.get(f"/api/shares/{share['id']}", headers=alice.auth)
    assert kept.status_code == 200 and kept.json()["status"] == "revoked"
    assert app.client.get(f"/api/shares/{share['id']}", headers=bob.auth).status_code == 404
    assert app.client.get(f"/api/shares/{share['id']}/qr", headers=alice.auth).status_code == 410


def test_several_files_download_as_one_streamed_zip(app: App) -> None:
    alice = app.account()
    first = os.urandom(3_000_000)
    ids = [
        app.upload(alice, "a.bin", first, share="false")["file"]["id"],
        app.upload(alice, "b.txt", b"bee", share="false")["file"]["id"],
        app.upload(alice, "b.txt", b"second bee", share="false")["file"]["id"],
    ]
    share = app.share(alice, ids, max_downloads=1)
    response = app.client.get(_path(share["url"]) + "/download")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert "content-length" not in response.headers, "made on the fly, not buffered first"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.namelist() == ["a.bin", "b.txt", "b (2).txt"]
    assert archive.read("a.bin") == first and archive.read("b (2).txt") == b"second bee"
    assert archive.testzip() is None
    counted = app.client.get(f"/api/shares/{share['id']}", headers=alice.auth).json()
    assert counted["download_count"] == 1 and counted["remaining_downloads"] == 0


def test_share_terms_are_checked_against_the_server_limits(app: App) -> None:
    alice = app.account()
    file_id = app.upload(alice, "x.txt", b"x", share="false")["file"]["id"]
    too_long = app.client.post(
        "/api/shares", json={"file_ids": [file_id], "expires_in_hours": 24 * 365}, headers=alice.auth
    )
    assert too_long.status_code == 422 and "at most 30 days" in too_long.json()["detail"]
    tokens = {app.share(alice, [file_id])["token"] for _ in range(5)}
    assert len(tokens) == 5 and all(len(t) >= 32 for t in tokens), "192 random bits each"


def test_the_default_expiry_is_the_operators_choice(make_app: AppFactory) -> None:
    with make_app(SATCHEL_SHARE_DEFAULT_DAYS="2") as app:
        alice = app.account()
        for share in (
            app.upload(alice, "a.txt", b"a")["share"],
            app.share(alice, [app.upload(alice, "b.txt", b"b", share="false")["file"]["id"]]),
        ):
            lifetime = datetime.fromisoformat(share["expires_at"]) - datetime.fromisoformat(share["created_at"])
            assert abs(lifetime - timedelta(days=2)) < timedelta(minutes=1)
