"""Share pages that work for people, through the app on real PostgreSQL, Redis and storage.

A link's QR code is its owner's alone and holds its URL and nothing else; a limited link's page can ask how many
downloads are left (and learns nothing more than the page shows); a link that ended keeps answering 410 with its
reason, before the sweep and after it for the history window, and only then is unknown.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from satchel.adapters.db.schema import shares
from satchel.services.expiry import Expiry, PurgeReport

from support.app import PASSWORD, Account, App
from support.qr import decode_svg

BASE = "http://satchel.test"


def _path(url: str) -> str:
    return url.removeprefix(BASE)


def _as_page(app: App, path: str) -> Any:
    return app.client.get(path, headers={"Accept": "text/html"})


def _browser_of(app: App, who: Account) -> None:
    app.client.cookies.clear()
    assert app.sign_in(who).status_code == 303


# --- QR codes -------------------------------------------------------------------------------------------


def test_the_owner_gets_a_qr_code_of_the_link_and_of_nothing_else(app: App) -> None:
    alice = app.account()
    share = app.upload(alice, "plans.pdf", b"%PDF-1.7 plans")["share"]
    from_api = app.client.get(f"/api/shares/{share['id']}/qr", headers=alice.auth)
    _browser_of(app, alice)
    from_page = app.client.get(f"/shares/{share['id']}/qr.svg")

    for response in (from_api, from_page):
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/svg+xml"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["content-security-policy"].startswith("sandbox;")
        assert response.headers["cache-control"] == "private, no-store", "it holds the link's secret"
        assert response.headers["content-disposition"] == f'inline; filename="satchel-link-{share["id"]}.svg"'
        assert decode_svg(response.content) == [share["url"]], "the link's own URL, read back by a QR reader"
        assert share["token"].encode() not in response.content, "as a code only, not as text in the file"
    assert from_api.content == from_page.content


def test_the_qr_code_follows_the_public_url_the_server_is_reached_at(make_app: Any) -> None:
    with make_app(SATCHEL_PUBLIC_URL="https://files.example.org") as app:
        alice = app.account()
        share = app.upload(alice, "a.txt", b"a")["share"]
        svg = app.client.get(f"/api/shares/{share['id']}/qr", headers=alice.auth).content
        assert decode_svg(svg) == [f"https://files.example.org/s/{share['token']}"]


def test_nobody_but_the_owner_gets_a_links_qr_code(app: App) -> None:
    alice, bob = app.account(), app.account()
    share = app.upload(alice, "secret.txt", b"s")["share"]
    request = app.client.post("/api/requests", json={}, headers=alice.auth).json()
    pictures = [f"/shares/{share['id']}/qr.svg", f"/requests/{request['id']}/qr.svg"]
    api = [f"/api/shares/{share['id']}/qr", f"/api/requests/{request['id']}/qr"]

    app.client.cookies.clear()
    for path in pictures:  # a stranger, as an <img> or a page: nothing there, and no sign-in page to go to
        for accept in ("image/avif,image/webp,*/*", "text/html"):
            response = app.client.get(path, headers={"Accept": accept}, follow_redirects=False)
            assert response.status_code == 404, (path, accept)
            assert share["token"] not in response.text and request["url"] not in response.text
    for path in api:
        assert app.client.get(path).status_code == 401
        other = app.client.get(path, headers=bob.auth)
        assert other.status_code == 404 and other.headers["content-type"] == "application/problem+json"
    _browser_of(app, bob)
    for path in pictures:
        assert app.client.get(path).status_code == 404
    assert app.client.get("/shares/99999999/qr.svg").status_code == 404


def test_an_upload_link_has_a_qr_code_of_its_own_address(app: App) -> None:
    alice = app.account()
    request = app.client.post("/api/requests", json={"max_files": 2}, headers=alice.auth).json()
    from_api = app.client.get(f"/api/requests/{request['id']}/qr", headers=alice.auth)
    assert from_api.headers["content-type"] == "image/svg+xml"
    assert decode_svg(from_api.content) == [request["url"]] and "/r/" in request["url"]
    _browser_of(app, alice)
    page = _as_page(app, f"/requests/{request['id']}")
    assert f'src="/requests/{request["id"]}/qr.svg"' in page.text
    assert decode_svg(app.client.get(f"/requests/{request['id']}/qr.svg").content) == [request["url"]]


def test_a_link_that_no_longer_opens_has_no_qr_code(app: App) -> None:
    alice = app.account()
    share = app.upload(alice, "plans.pdf", b"%PDF-1.7 plans")["share"]
    request = app.client.post("/api/requests", json={"max_files": 2}, headers=alice.auth).json()
    assert app.client.delete(f"/api/shares/{share['id']}", headers=alice.auth).status_code == 204
    assert app.client.delete(f"/api/requests/{request['id']}", headers=alice.auth).status_code == 204

    links = [f"shares/{share['id']}", f"requests/{request['id']}"]
    from_api = [app.client.get(f"/api/{link}/qr", headers=alice.auth) for link in links]
    _browser_of(app, alice)
    from_pages = [app.client.get(f"/{link}/qr.svg") for link in links]

    assert [r.status_code for r in from_api + from_pages] == [410] * 4, "a code that leads nowhere helps nobody"
    assert all(r.headers["content-type"] == "application/problem+json" for r in from_api)


def test_the_share_page_shows_the_qr_code_with_a_way_to_keep_it(app: App) -> None:
    alice = app.account()
    share = app.upload(alice, "a.txt", b"a")["share"]
    _browser_of(app, alice)
    page = _as_page(app, f"/shares/{share['id']}")
    assert f'<img class="qr-code" src="/shares/{share["id"]}/qr.svg"' in page.text
    assert f'href="/shares/{share["id"]}/qr.svg" download="satchel-link-{share["id"]}.svg"' in page.text


def test_a_qr_request_leaves_no_token_in_the_access_log(app: App, capsys: pytest.CaptureFixture[str]) -> None:
    alice = app.account()
    share = app.upload(alice, "a.txt", b"a")["share"]
    capsys.readouterr()
    assert app.client.get(f"/api/shares/{share['id']}/qr", headers=alice.auth).status_code == 200
    assert app.client.get(f"/s/{share['token']}/status").status_code == 200
    logged = capsys.readouterr()
    assert f"/api/shares/{share['id']}/qr" in logged.out + logged.err, "the request was logged"
    assert share["token"] not in logged.out + logged.err


# --- downloads left -------------------------------------------------------------------------------------


def test_a_limited_links_status_follows_each_download_and_then_says_it_is_used_up(app: App) -> None:
    alice = app.account()
    share = app.upload(alice, "once-or-twice.txt", b"twice", max_downloads=2)["share"]
    app.client.cookies.clear()
    status = f"/s/{share['token']}/status"

    first = app.client.get(status)
    assert first.status_code == 200 and first.headers["cache-control"] == "no-store"
    assert first.json() == {"downloads_left": 2, "expires_at": share["expires_at"]}, "what the page shows, no more"
    assert "set-cookie" not in first.headers, "a stranger asking is not remembered"
    assert app.client.get(_path(share["url"]) + "/download").status_code == 200
    assert app.client.get(status).json()["downloads_left"] == 1
    assert app.client.get(_path(share["url"]) + "/download").status_code == 200
    ended = app.client.get(status)
    assert ended.status_code == 410 and ended.headers["content-type"] == "application/problem+json"
    assert ended.json()["detail"] == "This link has reached its download limit."


def test_a_link_without_a_limit_has_no_count_to_follow(app: App) -> None:
    alice = app.account()
    share = app.upload(alice, "any.txt", b"any")["share"]
    assert app.client.get(f"/s/{share['token']}/status").json()["downloads_left"] is None
    page = _as_page(app, _path(share["url"]))
    assert "data-share-status" not in page.text and "downloads left" not in page.text
    assert app.client.get(f"/s/{'x' * 32}/status").status_code == 404


def test_a_password_links_status_tells_nothing_before_it_is_unlocked(app: App) -> None:
    alice = app.account()
    file_id = app.upload(alice, "locked.txt", b"locked", share="false")["file"]["id"]
    share = app.share(alice, [file_id], max_downloads=3, password="open sesame")
    app.client.cookies.clear()
    status = f"/s/{share['token']}/status"

    locked = app.client.get(status)
    assert locked.status_code == 401 and locked.headers["content-type"] == "application/problem+json"
    assert set(locked.json()) == {"type", "title", "status", "detail"}
    assert "downloads" not in locked.text and share["expires_at"][:10] not in locked.text
    assert app.client.get(status, headers={"X-Share-Password": "wrong"}).status_code == 401
    assert app.client.get(status, headers={"X-Share-Password": "open sesame"}).json()["downloads_left"] == 3

    page = _as_page(app, _path(share["url"]))
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text[:300]
    unlocked = app.client.post(
        _path(share["url"]) + "/unlock", data={"password": "open sesame", "csrf_token": token.group(1)}
    )
    assert unlocked.status_code == 200  # redirected back to the page, now showing the files
    assert app.client.get(status).json()["downloads_left"] == 3, "the unlocked browser may ask"


def test_the_public_page_of_a_limited_link_carries_its_count_for_the_script(app: App) -> None:
    alice = app.account()
    share = app.upload(alice, "count.txt", b"count", max_downloads=5)["share"]
    page = _as_page(app, _path(share["url"]))
    assert f'data-share-status="/s/{share["token"]}/status"' in page.text
    assert 'data-downloads-left="5"' in page.text and "5 downloads left" in page.text
    assert "<script>" not in page.text and "onclick" not in page.text, "behaviour comes from app.js alone"


# --- ended links: 410, kept through the history window, then unknown ------------------------------------


def _end(app: App, owner: Account, share: dict[str, Any], how: str) -> None:
    if how == "used up":
        assert app.client.get(_path(share["url"]) + "/download").status_code == 200
    elif how == "revoked":
        assert app.client.delete(f"/api/shares/{share['id']}", headers=owner.auth).status_code == 204
    else:

        async def expire() -> None:
            async with app.services.database.engine.begin() as conn:
                past = sa.func.now() - timedelta(minutes=1)
                await conn.execute(sa.update(shares).where(shares.c.id == share["id"]).values(expires_at=past))

        app.call(expire)


def _sweep(app: App, *, days_later: float = 0) -> PurgeReport:
    """The real sweep on the app's database and storage; its clock ``days_later`` than now."""
    services = app.services
    later = datetime.now(UTC) + timedelta(days=days_later)
    expiry = Expiry(
        services.uow, services.storage, history_days=services.settings.share_history_days, clock=lambda: later
    )
    return app.call(expiry.purge_expired)


REASONS = {
    "used up": "This link has reached its download limit.",
    "expired": "This link has expired.",
    "revoked": "This link was revoked by its owner.",
}


@pytest.mark.parametrize("how", list(REASONS))
def test_an_ended_link_says_why_before_and_after_the_sweep_and_is_unknown_after_its_history(app: App, how: str) -> None:
    alice = app.account()
    file_id = app.upload(alice, "report.pdf", b"%PDF-1.7 report", share="false")["file"]["id"]
    share = app.share(alice, [file_id], max_downloads=1, delete_files_when_done=True, title="Q3 report")
    app.client.cookies.clear()
    _end(app, alice, share, how)
    days = app.services.settings.share_history_days

    def says_why() -> None:
        page = _as_page(app, _path(share["url"]))
        assert page.status_code == 410 and "text/html" in page.headers["content-type"]
        assert REASONS[how] in page.text and "This link no longer works" in page.text
        assert "Q3 report" not in page.text and "report.pdf" not in page.text, "nothing of what it held"
        problem = app.client.get(_path(share["url"]) + "/download")
        assert problem.status_code == 410 and problem.json()["detail"] == REASONS[how]
        assert app.client.get(f"/s/{share['token']}/status").status_code == 410

    says_why()
    report = _sweep(app)
    assert share["id"] in report.shares and file_id in report.files and report.history == []
    assert app.client.get(f"/api/files/{file_id}", headers=alice.auth).status_code == 404, "its file went"
    says_why()  # the record stayed, with no file rows left to show
    listed = {s["id"]: s for s in app.client.get("/api/shares", headers=alice.auth).json()["items"]}
    assert listed[share["id"]]["status"] == how and listed[share["id"]]["files"] == []

    assert share["id"] not in _sweep(app, days_later=days - 1).history, "still inside the window"
    says_why()
    assert share["id"] in _sweep(app, days_later=days + 1).history
    gone = _as_page(app, _path(share["url"]))
    assert gone.status_code == 404 and REASONS[how] not in gone.text
    assert app.client.get(f"/api/shares/{share['id']}", headers=alice.auth).status_code == 404


def test_the_owner_and_the_administrator_still_see_an_ended_link_after_the_sweep(app: App) -> None:
    alice = app.account()
    share = app.upload(alice, "kept.txt", b"kept", max_downloads=1)["share"]
    _end(app, alice, share, "used up")
    _sweep(app)
    _browser_of(app, alice)
    listing = _as_page(app, "/shares")
    row = listing.text[listing.text.index(share["token"][:8]) :]
    assert "Used up</span>" in row[:2000]
    page = _as_page(app, f"/shares/{share['id']}")
    assert page.status_code == 200 and "This link no longer works: it is used up" in page.text
    assert "after that Satchel forgets it" in page.text
    assert "qr.svg" not in page.text, "no QR code for a link that no longer works"

    admin_email = f"admin-{share['id']}@example.test"
    app.call(lambda: app.services.accounts.create_user(admin_email, PASSWORD, is_admin=True))
    admin_token = app.call(app.services.accounts.token_for, admin_email, "admin").secret
    every = app.client.get("/api/admin/shares?status=used up", headers={"Authorization": f"Bearer {admin_token}"})
    assert share["id"] in [item["id"] for item in every.json()["items"]]


def test_the_qr_codes_and_a_links_status_are_in_the_api_document(app: App) -> None:
    paths = app.client.get("/openapi.json").json()["paths"]
    for path in ("/api/shares/{share_id}/qr", "/api/requests/{request_id}/qr"):
        answers = paths[path]["get"]["responses"]
        assert list(answers["200"]["content"]) == ["image/svg+xml"]
        assert {"401", "404"} <= set(answers) and list(answers["404"]["content"]) == ["application/problem+json"]
    status = paths["/s/{token}/status"]["get"]
    assert "security" not in status, "anyone with the link may ask"
    assert {"200", "401", "404", "410", "429"} <= set(status["responses"])
    assert [p["name"] for p in status["parameters"]] == ["token", "X-Share-Password"]
