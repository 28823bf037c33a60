"""Malformed and hostile requests: each is answered with a 4xx problem (or a readable page) and leaves nothing.

No 500, no stack trace, no partial object in storage, no half-written row, no quota taken.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from satchel.ports.health import ServiceUnavailable

from support.app import Account, App, AppFactory
from support.processes import SatchelProcess, create_account

PROBLEM = "application/problem+json"
BIGINT = 2**63 - 1
A_FILE_ID = "0123456789abcdef" * 2  # well formed, names nothing


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"] == PROBLEM
    assert "Traceback" not in response.text
    body: dict[str, Any] = response.json()
    return body


def _page(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    assert "Traceback" not in response.text


def _objects(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _footprint(app: App, who: Account, storage: Path) -> tuple[int, int, int]:
    """What an account has left: objects in storage, file rows, bytes counted against its quota."""
    files = app.client.get("/api/files", headers=who.auth).json()["total"]
    used = app.client.get("/api/me", headers=who.auth).json()["used_bytes"]
    return len(_objects(storage)), files, used


def _multipart(parts: list[tuple[str, bytes]], boundary: str = "b0undary", *, closed: bool = True) -> bytes:
    """A multipart body written by hand: (Content-Disposition and other headers, data) per part."""
    body = b"".join(f"--{boundary}\r\n{head}\r\n\r\n".encode() + data + b"\r\n" for head, data in parts)
    return body + (f"--{boundary}--\r\n".encode() if closed else b"")


def _file_part(name: str, data: bytes) -> tuple[str, bytes]:
    return f'Content-Disposition: form-data; name="file"; filename="{name}"', data


def _post_multipart(app: App, who: Account, body: bytes, boundary: str = "b0undary") -> httpx.Response:
    headers = {**who.auth, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    return app.client.post("/api/files", content=body, headers=headers)


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    return tmp_path / "objects"


# --- Identifiers that cannot name anything ---------------------------------------------------------


@pytest.mark.parametrize("link", ["a%00b", "a%00b/download", f"a%00b/files/{A_FILE_ID}", "A" * 31 + "%00", "x" * 5000])
def test_a_nul_byte_in_a_share_link_is_a_404_not_a_server_error(app: App, link: str) -> None:
    _problem(app.client.get(f"/s/{link}"), 404)
    _page(app.client.get(f"/s/{link}", headers={"Accept": "text/html"}), 404)


@pytest.mark.parametrize("file_id", ["a%00b", A_FILE_ID.upper(), A_FILE_ID[:-1], "f" * 5000])
def test_a_file_id_that_cannot_be_one_is_a_404_on_every_route(app: App, file_id: str) -> None:
    alice = app.account()
    token = app.upload(alice, "a.txt", b"a")["share"]["token"]
    for method, path in [
        ("GET", f"/api/files/{file_id}"),
        ("PATCH", f"/api/files/{file_id}"),
        ("DELETE", f"/api/files/{file_id}"),
        ("GET", f"/api/files/{file_id}/content"),
        ("GET", f"/api/files/{file_id}/thumbnail"),
        ("GET", f"/s/{token}/files/{file_id}"),
        ("GET", f"/s/{token}/thumbnails/{file_id}"),
    ]:
        response = app.client.request(method, path, headers=alice.auth, json={"name": "b.txt"})
        assert _problem(response, 404)["detail"].startswith("No such file"), path
    app.sign_in(alice)
    _page(app.client.get(f"/files/{file_id}", headers={"Accept": "text/html"}), 404)
    _page(app.client.get(f"/shares/new?file={file_id}", headers={"Accept": "text/html"}), 404)


def test_a_malformed_file_id_in_a_new_share_is_a_404(app: App) -> None:
    alice = app.account()
    file_id = app.upload(alice, "a.txt", b"a", share="false")["file"]["id"]
    response = app.client.post("/api/shares", json={"file_ids": [file_id, "a\x00b"]}, headers=alice.auth)
    _problem(response, 404)
    app.sign_in(alice)
    form = {"file_id": [file_id, "a\x00b"], "csrf_token": app.csrf("/files")}
    _page(app.client.post("/shares", data=form, headers={"Accept": "text/html"}), 404)
    assert app.client.get("/api/shares", headers=alice.auth).json()["total"] == 0


# --- Numbers beyond what the database holds ---------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/files?offset=9999999999999999999"),
        ("GET", "/api/shares?offset=9999999999999999999"),
        ("GET", "/api/shares/99999999999999999999"),
        ("DELETE", "/api/shares/99999999999999999999"),
        ("GET", "/api/shares/0"),
        ("DELETE", "/api/tokens/99999999999999999999"),
        ("GET", "/api/files?limit=99999999999999999999"),
    ],
)
def test_an_api_number_beyond_a_bigint_is_422_not_a_server_error(app: App, method: str, path: str) -> None:
    alice = app.account()
    problem = _problem(app.client.request(method, path, headers=alice.auth), 422)
    assert problem["errors"], "refused as it came in, not by the database"


@pytest.mark.parametrize(
    ("path", "field", "given"),
    [
        ("/api/shares", "max_downloads", True),
        ("/api/shares", "max_downloads", "3"),
        ("/api/requests", "max_bytes", True),
        ("/api/requests", "max_files", "2"),
        ("/api/shares", "delete_files_when_done", 1),
    ],
)
def test_a_json_value_of_another_type_is_refused_not_guessed_at(app: App, path: str, field: str, given: Any) -> None:
    alice = app.account()
    file_id = app.upload(alice, "a.txt", b"a", share="false")["file"]["id"]
    body = {"file_ids": [file_id]} if path == "/api/shares" else {}

    refused = app.client.post(path, json={**body, field: given}, headers=alice.auth)
    whole = app.client.post(
        path, json={**body, field: 3.0 if field != "delete_files_when_done" else True}, headers=alice.auth
    )

    assert refused.status_code == 422, "true is not 1 and '3' is not 3"
    assert refused.json()["errors"][0]["loc"] == ["body", field]
    assert whole.status_code == 201, "3.0 is an integer, as JSON Schema has it"


@pytest.mark.parametrize(
    "path",
    ["/files?page=99999999999999999999", f"/files?page={BIGINT // 50 + 1}", "/shares?page=99999999999999999999",
     "/shares/99999999999999999999"],
)  # fmt: skip
def test_a_page_number_beyond_a_bigint_is_a_422_page(app: App, path: str) -> None:
    app.sign_in(app.account())
    page = app.client.get(path, headers={"Accept": "text/html"})
    _page(page, 422)
    assert "less than or equal" in page.text, "refused as it came in, not by the database"


def test_the_last_page_the_database_can_hold_is_simply_empty(app: App) -> None:
    app.sign_in(app.account())
    page = app.client.get(f"/files?page={BIGINT // 50}", headers={"Accept": "text/html"})
    assert page.status_code == 200


def test_a_token_id_beyond_a_bigint_on_the_account_page_is_422(app: App) -> None:
    alice = app.account()
    app.sign_in(alice)
    response = app.client.post(
        "/account/tokens/99999999999999999999/revoke",
        data={"csrf_token": app.csrf("/account")},
        headers={"Accept": "text/html"},
    )
    _page(response, 422)
    assert "less than or equal" in response.text
    assert len(app.client.get("/api/tokens", headers=alice.auth).json()) == 1


# --- Share terms: one rule, checked before the upload ------------------------------------------------


@pytest.mark.parametrize("hours", ["1e300", "inf", "nan", "-1", "0", str(24 * 30 + 1), "9" * 400])
def test_an_absurd_expiry_on_put_is_422_and_stores_nothing(app: App, storage: Path, hours: str) -> None:
    alice = app.account()
    response = app.client.put(f"/api/files/x.txt?expires_in_hours={hours}", content=b"abc", headers=alice.auth)
    _problem(response, 422)
    assert _footprint(app, alice, storage) == (0, 0, 0)


@pytest.mark.parametrize("limit", ["0", "1000001", "9" * 30])
def test_an_absurd_download_limit_on_put_is_422_and_stores_nothing(app: App, storage: Path, limit: str) -> None:
    alice = app.account()
    response = app.client.put(f"/api/files/x.txt?max_downloads={limit}", content=b"abc", headers=alice.auth)
    _problem(response, 422)
    assert _footprint(app, alice, storage) == (0, 0, 0)


def test_a_link_that_fails_after_the_upload_takes_the_upload_with_it(
    app: App, storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = app.account()

    async def unavailable(*args: object, **kwargs: object) -> None:
        raise ServiceUnavailable("database", "went away between the upload and the link")

    monkeypatch.setattr(app.services.sharing, "create", unavailable)
    _problem(app.client.put("/api/files/x.txt", content=b"abc", headers=alice.auth), 503)
    assert _footprint(app, alice, storage) == (0, 0, 0)


@pytest.mark.parametrize("hours", ["1e300", "Infinity", "NaN", str(24 * 30 + 1)])
def test_an_absurd_expiry_for_a_new_share_is_422(app: App, hours: str) -> None:
    alice = app.account()
    file_id = app.upload(alice, "a.txt", b"a", share="false")["file"]["id"]
    body = f'{{"file_ids": ["{file_id}"], "expires_in_hours": {hours}}}'  # raw: JSON allows no Infinity
    headers = {**alice.auth, "Content-Type": "application/json"}
    _problem(app.client.post("/api/shares", content=body, headers=headers), 422)
    assert app.client.get("/api/shares", headers=alice.auth).json()["total"] == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [("expires_in_hours", "9" * 30), ("expires_in_hours", str(24 * 30 + 1)), ("expires_in_hours", "-5"),
     ("max_downloads", "9" * 5000), ("max_downloads", "\uff11\uff12"), ("max_downloads", "0")],
)  # fmt: skip
def test_absurd_terms_on_the_new_share_form_are_a_422_page(app: App, field: str, value: str) -> None:
    alice = app.account()
    file_id = app.upload(alice, "a.txt", b"a", share="false")["file"]["id"]
    app.sign_in(alice)
    form = {"file_id": file_id, field: value, "csrf_token": app.csrf("/files")}
    _page(app.client.post("/shares", data=form, headers={"Accept": "text/html"}), 422)
    assert app.client.get("/api/shares", headers=alice.auth).json()["total"] == 0


def test_every_route_that_makes_a_link_gives_the_operators_default_expiry(make_app: AppFactory) -> None:
    with make_app(SATCHEL_SHARE_DEFAULT_DAYS="3", SATCHEL_SHARE_MAX_DAYS="5") as app:
        alice = app.account()
        file_id = app.upload(alice, "a.txt", b"a", share="false")["file"]["id"]
        app.upload(alice, "b.txt", b"b")
        app.share(alice, [file_id])
        app.sign_in(alice)
        form = {"file_id": file_id, "csrf_token": app.csrf("/files")}
        assert app.client.post("/shares", data=form, follow_redirects=False).status_code == 303
        shares = app.client.get("/api/shares", headers=alice.auth).json()["items"]
        assert len(shares) == 3
        for share in shares:
            lifetime = datetime.fromisoformat(share["expires_at"]) - datetime.fromisoformat(share["created_at"])
            assert abs(lifetime - timedelta(days=3)) < timedelta(minutes=1)


# --- multipart/form-data ------------------------------------------------------------------------------


def test_a_ten_kilobyte_multipart_file_name_is_shortened_like_any_name(app: App) -> None:
    alice = app.account()
    files = [("file", ("n" * 10_000 + ".txt", b"data", "text/plain"))]
    response = app.client.post("/api/files", files=files, headers=alice.auth)
    assert response.status_code == 201, response.text
    name = response.json()["items"][0]["name"]
    assert len(name) == 255 and name.endswith(".txt")


def test_a_garbage_multipart_body_is_400_and_stores_nothing(app: App, storage: Path) -> None:
    alice = app.account()
    _problem(_post_multipart(app, alice, b"this is not multipart at all\r\n\r\n"), 400)
    assert _footprint(app, alice, storage) == (0, 0, 0)


def test_a_multipart_part_header_beyond_sixteen_kilobytes_is_400(app: App, storage: Path) -> None:
    alice = app.account()
    _problem(_post_multipart(app, alice, _multipart([_file_part("n" * 20_000, b"data")])), 400)
    assert _footprint(app, alice, storage) == (0, 0, 0)


def test_a_multipart_boundary_may_have_70_characters_and_no_more(app: App, storage: Path) -> None:
    alice = app.account()
    for length in (71, 5000):
        boundary = "b" * length
        response = _post_multipart(app, alice, _multipart([_file_part("a.txt", b"a")], boundary), boundary)
        assert "70" in _problem(response, 400)["detail"]
    assert _footprint(app, alice, storage) == (0, 0, 0)
    boundary = "b" * 70
    assert _post_multipart(app, alice, _multipart([_file_part("a.txt", b"a")], boundary), boundary).status_code == 201


def test_a_multipart_request_without_a_boundary_is_400(app: App) -> None:
    alice = app.account()
    headers = {**alice.auth, "Content-Type": "multipart/form-data"}
    _problem(app.client.post("/api/files", content=_multipart([_file_part("a.txt", b"a")]), headers=headers), 400)


def test_a_multipart_body_without_its_closing_boundary_stores_nothing(app: App, storage: Path) -> None:
    alice = app.account()
    body = _multipart([_file_part("whole.txt", b"whole"), _file_part("cut.txt", b"cut short")], closed=False)
    assert "closing boundary" in _problem(_post_multipart(app, alice, body), 400)["detail"]
    assert _footprint(app, alice, storage) == (0, 0, 0), "the complete part before it goes too"


def test_an_empty_multipart_body_is_400(app: App, storage: Path) -> None:
    alice = app.account()
    _problem(_post_multipart(app, alice, b""), 400)
    assert _footprint(app, alice, storage) == (0, 0, 0)


def test_a_control_character_in_a_parts_content_type_is_not_stored(app: App) -> None:
    alice = app.account()
    head, data = _file_part("a.txt", b"a")
    response = _post_multipart(app, alice, _multipart([(head + "\r\nContent-Type: text/pl\x00ain", data)]))
    assert response.status_code == 201, response.text
    assert response.json()["items"][0]["content_type"] == "text/plain", "guessed from the name instead"


# --- Empty and oversized uploads ------------------------------------------------------------------------


def test_an_empty_put_is_422_and_leaves_nothing(app: App, storage: Path) -> None:
    alice = app.account()
    _problem(app.client.put("/api/files/empty.txt", content=b"", headers=alice.auth), 422)
    assert _footprint(app, alice, storage) == (0, 0, 0)


def test_an_empty_multipart_file_is_422_and_undoes_the_parts_before_it(app: App, storage: Path) -> None:
    alice = app.account()
    body = _multipart([_file_part("full.txt", b"full"), _file_part("empty.txt", b"")])
    _problem(_post_multipart(app, alice, body), 422)
    assert _footprint(app, alice, storage) == (0, 0, 0)


def test_a_multipart_file_over_the_size_limit_is_413_and_leaves_nothing(make_app: AppFactory, storage: Path) -> None:
    with make_app(SATCHEL_MAX_UPLOAD_BYTES="100000") as app:
        alice = app.account()
        body = _multipart([_file_part("small.bin", b"s" * 1000), _file_part("big.bin", b"b" * 200_000)])
        _problem(_post_multipart(app, alice, body), 413)
        assert _footprint(app, alice, storage) == (0, 0, 0)


def test_a_multipart_upload_over_quota_is_413_and_leaves_nothing(app: App, storage: Path) -> None:
    alice = app.account(quota=50_000)
    body = _multipart([_file_part("fits.bin", b"f" * 30_000), _file_part("too-much.bin", b"t" * 30_000)])
    assert "quota" in _problem(_post_multipart(app, alice, body), 413)["detail"]
    assert _footprint(app, alice, storage) == (0, 0, 0)


# --- Partial PUT ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_range", ["bytes 0-2/10", "bytes 7-9/10", "bytes */10", "garbage"])
def test_a_put_with_content_range_is_400_pointing_at_resumable_uploads(
    app: App, storage: Path, content_range: str
) -> None:
    alice = app.account()
    headers = {**alice.auth, "Content-Range": content_range}
    problem = _problem(app.client.put("/api/files/part.bin", content=b"abc", headers=headers), 400)
    assert "/api/uploads/" in problem["detail"]
    assert _footprint(app, alice, storage) == (0, 0, 0)


# --- Ranges ---------------------------------------------------------------------------------------------

DATA = bytes(range(256)) * 40  # 10,240 bytes


@pytest.fixture(params=["file", "memory"])
def shared(request: pytest.FixtureRequest, make_app: AppFactory) -> Iterator[tuple[App, Account, str]]:
    """A file on local storage or on a streamed store, with a share link of 10 downloads."""
    overrides = {"STORAGE_URL": "memory://"} if request.param == "memory" else {}
    with make_app(**overrides) as app:
        alice = app.account()
        share = app.upload(alice, "data.bin", DATA, max_downloads=10)["share"]
        yield app, alice, share["url"].removeprefix("http://satchel.test")


@pytest.mark.parametrize("wanted", [f"bytes={len(DATA)}-", "bytes=-0", f"bytes={'9' * 5000}-", "bytes=20000-20001"])
def test_a_range_outside_the_file_is_a_416_problem(shared: tuple[App, Account, str], wanted: str) -> None:
    app, alice, url = shared
    file_id = app.client.get("/api/files", headers=alice.auth).json()["items"][0]["id"]
    for path, auth in ((url + "/download", {}), (f"/api/files/{file_id}/content", alice.auth)):
        response = app.client.get(path, headers={**auth, "Range": wanted})
        _problem(response, 416)
        assert response.headers["content-range"] == f"bytes */{len(DATA)}"


@pytest.mark.parametrize(
    "ignored", ["bytes=0-1,5-6", "bytes=abc", "items=0-5", "bytes=5-2", "bytes=-", "bytes 0-5", "bytes=0-5;x"]
)
def test_a_range_header_we_do_not_honour_is_ignored(shared: tuple[App, Account, str], ignored: str) -> None:
    app, _, url = shared
    response = app.client.get(url + "/download", headers={"Range": ignored})
    assert response.status_code == 200, response.text[:200]
    assert response.content == DATA


def test_a_single_range_is_served_from_every_store(shared: tuple[App, Account, str]) -> None:
    app, _, url = shared
    for wanted, expected in (("bytes=10-19", DATA[10:20]), ("bytes=-5", DATA[-5:]), ("bytes=10000-", DATA[10000:])):
        response = app.client.get(url + "/download", headers={"Range": wanted})
        assert response.status_code == 206 and response.content == expected
    stale = app.client.get(url + "/download", headers={"Range": "bytes=0-9", "If-Range": '"not-the-etag"'})
    assert stale.status_code == 200 and stale.content == DATA


def test_a_refused_range_does_not_use_up_a_download(app: App) -> None:
    alice = app.account()
    url = app.upload(alice, "once.bin", DATA, max_downloads=1)["share"]["url"].removeprefix("http://satchel.test")
    _problem(app.client.get(url + "/download", headers={"Range": "bytes=999999-"}), 416)
    assert app.client.get(url + "/download").content == DATA


def test_a_locked_link_does_not_tell_its_file_size_through_a_range(app: App) -> None:
    alice = app.account()
    file_id = app.upload(alice, "secret.bin", DATA, share="false")["file"]["id"]
    url = app.share(alice, [file_id], password="open sesame")["url"].removeprefix("http://satchel.test")
    response = app.client.get(url + "/download", headers={"Range": "bytes=999999-"})
    assert _problem(response, 401) and "content-range" not in response.headers


# --- Credentials that no longer hold ----------------------------------------------------------------------


def test_a_revoked_or_unknown_api_token_is_a_401_problem(app: App) -> None:
    alice = app.account()
    token_id = app.client.get("/api/tokens", headers=alice.auth).json()[0]["id"]
    assert app.client.delete(f"/api/tokens/{token_id}", headers=alice.auth).status_code == 204
    _problem(app.client.get("/api/files", headers=alice.auth), 401)
    for unknown in (b"sat_" + b"x" * 43, b"not-even-ours", b"sat_\xe9\xe9"):
        _problem(app.client.get("/api/files", headers={"Authorization": b"Bearer " + unknown}), 401)


def test_a_session_that_no_longer_exists_is_signed_out(app: App) -> None:
    alice = app.account()
    app.sign_in(alice)
    cookie = app.client.cookies["satchel_session"]
    assert app.client.get("/api/me").status_code == 200
    app.call(app.services.sessions.delete, cookie)  # expired, or Redis lost it
    _problem(app.client.get("/api/me"), 401)
    page = app.client.get("/files", headers={"Accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/files"


# --- Text the database cannot store ----------------------------------------------------------------------


def _hostile_form(fields: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """A form whose declared charset turns the escape ``\\ud800`` into a lone surrogate on the server."""
    body = _multipart([(f'Content-Disposition: form-data; name="{k}"', v.encode()) for k, v in fields.items()])
    return body, {"Content-Type": "multipart/form-data; boundary=b0undary; charset=raw_unicode_escape"}


def test_a_nul_in_a_share_note_is_dropped_not_a_server_error(app: App) -> None:
    alice = app.account()
    file_id = app.upload(alice, "a.txt", b"a", share="false")["file"]["id"]
    assert app.share(alice, [file_id], note="for\x00 Bob\r\nthanks")["note"] == "for Bob\r\nthanks"
    app.sign_in(alice)
    body, headers = _hostile_form(
        {"file_id": file_id, "note": "to\x00 Carol \\ud800", "csrf_token": app.csrf("/files")}
    )
    assert app.client.post("/shares", content=body, headers=headers, follow_redirects=False).status_code == 303
    notes = {s["note"] for s in app.client.get("/api/shares", headers=alice.auth).json()["items"]}
    assert notes == {"for Bob\r\nthanks", "to Carol"}


def test_a_nul_or_lone_surrogate_in_a_file_name_never_reaches_the_database(app: App) -> None:
    alice = app.account()
    file_id = app.upload(alice, "a%00b.txt", b"a", share="false")["file"]["id"]
    assert app.client.get(f"/api/files/{file_id}", headers=alice.auth).json()["name"] == "ab.txt"
    renamed = app.client.patch(f"/api/files/{file_id}", json={"name": "c\x00d.txt"}, headers=alice.auth)
    assert renamed.json()["name"] == "cd.txt"
    raw = '{"name": "\\ud800e.txt"}'
    headers = {**alice.auth, "Content-Type": "application/json"}
    _problem(app.client.patch(f"/api/files/{file_id}", content=raw, headers=headers), 422)
    app.sign_in(alice)
    body, headers = _hostile_form({"name": "f\\ud800\x00g.txt", "csrf_token": app.csrf("/files")})
    response = app.client.post(f"/files/{file_id}/rename", content=body, headers=headers, follow_redirects=False)
    assert response.status_code == 303
    assert app.client.get(f"/api/files/{file_id}", headers=alice.auth).json()["name"] == "fg.txt"


def test_a_nul_in_a_token_name_is_refused_not_a_server_error(app: App) -> None:
    alice = app.account()
    _problem(app.client.post("/api/tokens", json={"name": "ci\x00"}, headers=alice.auth), 422)
    app.sign_in(alice)
    form = {"name": "ci\x00", "csrf_token": app.csrf("/account")}
    _page(app.client.post("/account/tokens", data=form, headers={"Accept": "text/html"}), 422)
    assert [t["name"] for t in app.client.get("/api/tokens", headers=alice.auth).json()] == ["tests"]


def test_a_share_password_that_cannot_be_hashed_is_refused_not_a_server_error(app: App) -> None:
    alice = app.account()
    file_id = app.upload(alice, "a.txt", b"a", share="false")["file"]["id"]
    raw = f'{{"file_ids": ["{file_id}"], "password": "\\ud800"}}'
    headers = {**alice.auth, "Content-Type": "application/json"}
    _problem(app.client.post("/api/shares", content=raw, headers=headers), 422)
    app.sign_in(alice)
    body, headers = _hostile_form({"file_id": file_id, "password": "\\ud800", "csrf_token": app.csrf("/files")})
    _page(app.client.post("/shares", content=body, headers={**headers, "Accept": "text/html"}), 422)
    assert app.client.get("/api/shares", headers=alice.auth).json()["total"] == 0


def test_an_unlock_attempt_with_an_unhashable_password_is_just_wrong(app: App) -> None:
    alice = app.account()
    file_id = app.upload(alice, "a.txt", b"a", share="false")["file"]["id"]
    url = app.share(alice, [file_id], password="open sesame")["url"].removeprefix("http://satchel.test")
    body, headers = _hostile_form({"password": "\\ud800", "csrf_token": app.csrf(url)})
    _page(app.client.post(url + "/unlock", content=body, headers={**headers, "Accept": "text/html"}), 401)


def test_a_control_character_in_a_recipient_is_422(app: App) -> None:
    alice = app.account()
    file_id = app.upload(alice, "a.txt", b"a", share="false")["file"]["id"]
    body = {"file_ids": [file_id], "notify": ["bob\x00@example.test"]}
    _problem(app.client.post("/api/shares", json=body, headers=alice.auth), 422)


# --- Bodies that stall, through a real `satchel web` -----------------------------------------------------


@pytest.fixture
def slow_web(base_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[int, str]]:
    """`satchel web` cutting bodies that stall for a second; yields its port and an API token."""
    env = {**base_env, "SATCHEL_BODY_TIMEOUT": "1", "WEB_CONCURRENCY": "1"}
    token = create_account(env, f"stall-{uuid.uuid4().hex[:8]}@example.test")
    web = SatchelProcess("web", env=env)
    try:
        web.wait_http(f"http://127.0.0.1:{env['PORT']}/healthz")
        yield int(env["PORT"]), token
    finally:
        web.stop()


def _stalled_request(port: int, head: str, sent: bytes) -> tuple[int, str, float]:
    """Send the head and part of the body, then nothing more: the answer's status and head, and when it came."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head.encode() + b"\r\n" + sent)
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := sock.recv(4096)):
            answer += chunk
    status_line, _, headers = answer.decode("latin-1").partition("\r\n")
    return int(status_line.split(" ")[1]), headers.lower(), time.monotonic() - started


def _listed(port: int, token: str) -> int:
    response = httpx.get(f"http://127.0.0.1:{port}/api/files", headers={"Authorization": f"Bearer {token}"})
    total: int = response.json()["total"]
    return total


def test_a_put_body_that_stalls_is_cut_with_408_and_stores_nothing(slow_web: tuple[int, str], tmp_path: Path) -> None:
    port, token = slow_web
    head = f"PUT /api/files/slow.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 100000\r\n"
    status, headers, took = _stalled_request(port, head, b"x" * 1000)
    assert status == 408 and f"content-type: {PROBLEM}" in headers and took < 10
    assert _objects(tmp_path / "objects") == [] and _listed(port, token) == 0


def test_a_multipart_body_that_stalls_is_cut_with_408_and_stores_nothing(
    slow_web: tuple[int, str], tmp_path: Path
) -> None:
    port, token = slow_web
    sent = _multipart([_file_part("done.txt", b"done"), _file_part("slow.bin", b"x" * 1000)], closed=False)
    head = (
        f"POST /api/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 100000\r\n"
        "Content-Type: multipart/form-data; boundary=b0undary\r\n"
    )
    status, headers, took = _stalled_request(port, head, sent)
    assert status == 408 and f"content-type: {PROBLEM}" in headers and took < 10
    assert _objects(tmp_path / "objects") == [] and _listed(port, token) == 0


def test_share_terms_are_refused_before_the_body_is_read(slow_web: tuple[int, str], tmp_path: Path) -> None:
    port, token = slow_web
    head = (
        f"PUT /api/files/x.bin?expires_in_hours=1e300 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Content-Length: 100000\r\n"
    )
    status, _, _ = _stalled_request(port, head, b"")
    assert status == 422, "answered at once, not after waiting for a body (408)"
    assert _objects(tmp_path / "objects") == [] and _listed(port, token) == 0
