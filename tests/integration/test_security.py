"""Security by default: headers, sessions in Redis, CSRF, argon2, switches an operator can flip."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
import redis
import sqlalchemy as sa

from satchel.adapters.db.schema import users
from satchel.services.users import UserChange

from support.app import PASSWORD, Account, App, AppFactory


def test_pages_and_api_carry_security_headers(app: App) -> None:
    for path in ("/", "/login", "/api/me", "/healthz"):
        headers = app.client.get(path, headers={"Accept": "text/html"}).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"


def test_pages_have_no_inline_script(app: App) -> None:
    for path in ("/", "/login", "/signup", "/docs"):
        html = app.client.get(path, headers={"Accept": "text/html"}).text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), f"inline script on {path}"


def test_session_cookie_is_a_random_id_kept_server_side(app: App, redis_url: str) -> None:
    alice = app.account()
    before = app.client.get("/login").cookies.get("satchel_session") or app.client.cookies.get("satchel_session")
    response = app.sign_in(alice)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    after = app.client.cookies.get("satchel_session")
    assert after and after != before, "a new session id on sign-in"
    assert alice.email not in after and len(after) >= 40
    store = redis.Redis.from_url(redis_url)
    key = "satchel:session:" + hashlib.sha256(after.encode()).hexdigest()  # a hash: a Redis dump holds no cookie
    assert not store.keys(f"*{after}*"), "the cookie's id itself is stored nowhere"
    assert json.loads(store.get(key))["user_id"] == alice.id, "this session, in Redis, names its user"
    assert 13 * 24 * 3600 < store.ttl(key) <= 14 * 24 * 3600
    assert app.client.get("/api/me").status_code == 200
    store.delete(key)
    assert app.client.get("/api/me").status_code == 401, "the cookie alone signs no one in"


def test_secure_cookie_when_served_over_https(make_app: AppFactory) -> None:
    with make_app(SATCHEL_PUBLIC_URL="https://files.example.test") as app:
        response = app.client.get("/login", headers={"Accept": "text/html"})
        assert "Secure" in response.headers["set-cookie"]
        assert "max-age" in app.client.get("/healthz").headers["strict-transport-security"]


def test_sign_out_ends_the_session_everywhere(app: App) -> None:
    alice = app.account()
    app.sign_in(alice)
    old = app.client.cookies["satchel_session"]
    assert app.client.get("/api/me").status_code == 200
    token = app.csrf("/files")
    app.client.post("/logout", data={"csrf_token": token})
    app.client.cookies.clear()
    app.client.cookies.set("satchel_session", old)
    assert app.client.get("/api/me").status_code == 401, "the old id is worthless after sign-out"


def test_forms_without_the_csrf_token_are_refused(app: App) -> None:
    alice = app.account()
    app.sign_in(alice)
    response = app.client.post("/account/tokens", data={"name": "forged"}, headers={"Accept": "text/html"})
    assert response.status_code == 403
    assert app.client.get("/api/tokens", headers=alice.auth).json()[0]["name"] == "tests"


def test_browser_api_calls_need_the_csrf_header_but_token_calls_do_not(app: App) -> None:
    alice = app.account()
    app.sign_in(alice)
    assert app.client.put("/api/files/a.txt", content=b"a").status_code == 403
    csrf = app.csrf("/files")
    assert app.client.put("/api/files/a.txt", content=b"a", headers={"X-CSRF-Token": csrf}).status_code == 201
    app.client.cookies.clear()
    assert app.client.put("/api/files/b.txt", content=b"b", headers=alice.auth).status_code == 201


def test_passwords_are_stored_as_argon2id_hashes(app: App) -> None:
    alice = app.account()

    async def stored() -> str:
        async with app.services.database.engine.connect() as conn:
            value = await conn.scalar(sa.select(users.c.password_hash).where(users.c.id == alice.id))
            return str(value)

    hashed = app.call(stored)
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed


def test_login_is_rate_limited(app: App) -> None:
    alice = app.account()
    token = app.csrf()
    codes = [
        app.client.post("/login", data={"email": alice.email, "password": "wrong", "csrf_token": token}).status_code
        for _ in range(11)
    ]
    assert codes[:10] == [401] * 10 and codes[10] == 429


def test_signup_can_be_switched_off(make_app: AppFactory) -> None:
    with make_app(SATCHEL_SIGNUP="closed") as app:
        token = app.csrf("/signup")
        response = app.client.post(
            "/signup", data={"email": "new@example.test", "password": PASSWORD, "csrf_token": token}
        )
        assert response.status_code == 403 and "closed" in response.text.lower()


def test_a_disabled_account_can_neither_sign_in_nor_use_its_tokens(app: App) -> None:
    alice = app.account()
    app.call(app.services.users.change, alice.email, UserChange(disabled=True))
    assert app.client.get("/api/me", headers=alice.auth).status_code == 401
    assert app.sign_in(alice).status_code == 403


def test_api_is_documented_with_openapi_served_locally(app: App) -> None:
    spec = app.client.get("/openapi.json").json()
    assert {"/api/files", "/api/files/{file_id}", "/api/shares", "/api/tokens", "/s/{token}/download"} <= set(
        spec["paths"]
    )
    docs = app.client.get("/docs")
    assert docs.status_code == 200 and "/static/swagger/swagger-ui-bundle.js" in docs.text
    assert app.client.get("/static/swagger/swagger-ui-bundle.js").status_code == 200


def test_every_link_lifetime_the_api_takes_is_documented_with_this_servers_longest(app: App) -> None:
    spec = app.client.get("/openapi.json").json()
    longest = app.services.settings.share_max_days * 24
    bodies = [
        s["properties"] for s in spec["components"]["schemas"].values() if "expires_in_hours" in s.get("properties", {})
    ]
    queries = [
        p
        for item in spec["paths"].values()
        for op in item.values()
        for p in op.get("parameters", [])
        if p["name"] == "expires_in_hours"
    ]
    lifetimes = [body["expires_in_hours"] for body in bodies] + [query["schema"] for query in queries]
    assert len(bodies) >= 2 and queries, "shares and upload links, by body and by query"
    for lifetime in lifetimes:
        assert [b["maximum"] for b in lifetime.get("anyOf", [lifetime]) if b.get("type") == "number"] == [longest]


def test_errors_never_show_a_traceback(app: App) -> None:
    for response in (
        app.client.get("/api/files/x", headers={"Authorization": "Bearer sat_x"}),
        app.client.post("/api/shares", json={"file_ids": "nope"}, headers=app.account().auth),
        app.client.get("/no/such/page", headers={"Accept": "text/html"}),
    ):
        assert "Traceback" not in response.text and 'File "' not in response.text


def _new_session(app: App, who: Account) -> str:
    """Sign ``who`` in from a fresh browser and return that browser's session cookie."""
    app.client.cookies.clear()
    assert app.sign_in(who).status_code == 303
    return app.client.cookies["satchel_session"]


def _use_session(app: App, cookie: str) -> None:
    app.client.cookies.clear()
    app.client.cookies.set("satchel_session", cookie)


@pytest.mark.parametrize("via", ["page", "api"])
def test_password_change_ends_other_sessions_and_revokes_tokens(app: App, via: str) -> None:
    alice = app.account()
    other = _new_session(app, alice)
    current = _new_session(app, alice)
    new_password = "a brand new passphrase"
    change = {"current_password": PASSWORD, "new_password": new_password}

    if via == "page":
        csrf = app.csrf("/account")
        changed = app.client.post("/account/password", data={**change, "csrf_token": csrf}, follow_redirects=False)
        assert changed.status_code == 303
        assert "signs you out everywhere else" in app.client.get("/account").text
    else:
        csrf = app.csrf("/files")
        assert app.client.post("/api/me/password", json=change, headers={"X-CSRF-Token": csrf}).status_code == 204
        after = app.client.post("/api/tokens", json={"name": "after"}, headers={"X-CSRF-Token": csrf})
        assert after.status_code == 201, "the page that changed it can go on using the API"

    assert app.client.cookies["satchel_session"] != current, "the changing browser got a new session id"
    assert app.client.get("/api/me").status_code == 200, "and stays signed in"
    _use_session(app, other)
    assert app.client.get("/api/me").status_code == 401, "every other session is signed out"
    app.client.cookies.clear()
    assert app.client.get("/api/me", headers=alice.auth).status_code == 401, "tokens made before are revoked"
    token = app.csrf()
    sign_in = {"email": alice.email, "csrf_token": token}
    assert app.client.post("/login", data={**sign_in, "password": PASSWORD}).status_code == 401
    assert (
        app.client.post("/login", data={**sign_in, "password": new_password}, follow_redirects=False).status_code == 303
    )


def test_password_change_through_the_api_with_a_token_revokes_that_token_too(app: App) -> None:
    alice = app.account()
    change = {"current_password": PASSWORD, "new_password": "a brand new passphrase"}
    assert app.client.post("/api/me/password", json=change, headers=alice.auth).status_code == 204
    assert app.client.get("/api/me", headers=alice.auth).status_code == 401


@pytest.mark.parametrize("email", ["a\x00b@example.test", "nul\x00@example.test", "a\x1fb@example.test"])
def test_an_email_with_control_characters_is_refused_not_a_server_error(app: App, email: str) -> None:
    token = app.csrf("/signup")
    signup = app.client.post("/signup", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert signup.status_code == 422 and "valid email" in signup.text
    token = app.csrf()
    login = app.client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert login.status_code == 401


def test_every_answer_names_the_instance_that_gave_it(make_app: AppFactory) -> None:
    with make_app(SATCHEL_INSTANCE="web-7") as app:
        assert app.client.get("/healthz").headers["Satchel-Instance"] == "web-7"
        assert app.client.get("/no/such/page").headers["Satchel-Instance"] == "web-7"
    with make_app() as app:
        assert "Satchel-Instance" not in app.client.get("/healthz").headers, "unnamed, the host stays unsaid"
