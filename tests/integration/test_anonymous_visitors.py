"""A visitor nobody needs to remember costs no server-side state: no Redis key per view.

The share page, its files, its thumbnails and the sign-in page are read by anyone with a link; a flood of
such views must not fill Redis. Their forms are still protected from cross-site posting, by a CSRF token
signed with SECRET_KEY and bound to a seed cookie, until something must be remembered (a sign-in, an
unlocked password share): only then does a session begin.
"""

from __future__ import annotations

import io
import re

import redis
from PIL import Image

from support.app import PASSWORD, Account, App, AppFactory


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), "teal").save(out, "PNG")
    return out.getvalue()


def _keys(redis_url: str) -> set[bytes]:
    """Every key now (keys of earlier tests may expire meanwhile: what matters is that none is added)."""
    return set(redis.Redis.from_url(redis_url).scan_iter(count=1000))


def _sessions(redis_url: str) -> int:
    return len(list(redis.Redis.from_url(redis_url).scan_iter("satchel:session:*")))


def test_a_thousand_anonymous_views_leave_redis_as_they_found_it(app: App, redis_url: str) -> None:
    owner = app.account()
    picture = app.upload(owner, "holiday.png", _png(), share="false")["file"]
    share = app.share(owner, [picture["id"]])
    token = share["token"]
    before = _keys(redis_url)
    visitor = app.client
    visitor.cookies.clear()
    link = [f"/s/{token}", f"/s/{token}/files/{picture['id']}", f"/s/{token}/download", f"/s/{token}/status"]
    pages = [*link, "/login", "/signup"]
    for i in range(1000):
        path = pages[i % len(pages)]
        response = visitor.get(path, headers={"Accept": "text/html"})
        assert response.status_code == 200, (path, response.status_code)
        visitor.cookies.clear()  # every view a new visitor, as a flood of them would be
    thumbnail = visitor.get(f"/s/{token}/thumbnails/{picture['id']}")
    assert thumbnail.status_code in (200, 404)  # 404 until the media worker has made it: still no state
    assert _keys(redis_url) - before == set(), "no key for any of a thousand visitors"


def test_a_visitor_signs_in_with_the_signed_token_and_only_then_gets_a_session(app: App, redis_url: str) -> None:
    who: Account = app.account()
    app.client.cookies.clear()
    token = app.csrf("/login")
    assert "satchel_session" not in app.client.cookies, "reading the sign-in page remembers nothing"
    assert "satchel_csrf" in app.client.cookies
    before = _sessions(redis_url)
    signed_in = app.client.post("/login", data={"email": who.email, "password": PASSWORD, "csrf_token": token})
    assert signed_in.status_code in (200, 303), signed_in.text[:300]
    assert "satchel_session" in app.client.cookies
    assert _sessions(redis_url) == before + 1, "one session, for the one visitor who signed in"


def test_a_signed_token_from_another_seed_or_none_is_refused(app: App) -> None:
    who = app.account()
    app.client.cookies.clear()
    mine = app.csrf("/login")
    app.client.cookies.clear()
    app.csrf("/login")  # another visitor's seed in the jar now
    form = {"email": who.email, "password": PASSWORD}
    assert app.client.post("/login", data={**form, "csrf_token": mine}).status_code == 403
    assert app.client.post("/login", data={**form, "csrf_token": ""}).status_code == 403
    app.client.cookies.clear()  # a cross-site post: no seed cookie comes with it
    assert app.client.post("/login", data={**form, "csrf_token": mine}).status_code == 403


def test_over_https_the_seed_cookie_cannot_be_planted_by_a_subdomain(make_app: AppFactory) -> None:
    with make_app(SATCHEL_PUBLIC_URL="https://files.example.test") as app:
        page = app.client.get("/login")
        cookie = page.headers["set-cookie"]
        assert re.match(r"__Host-satchel_csrf=[^;]+; Path=/; HttpOnly; SameSite=Lax; Secure", cookie), cookie
        assert "Domain=" not in cookie
