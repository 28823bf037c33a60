"""Password resets through the real app: the mail read from a real SMTP server, the link opened by a browser
without a session, the same answer for every address, the limits, and two uses of one link at once."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from test_admin_console import HTML, audit, make_admin
from test_jobs import job_rows, run

from satchel.domain.password_resets import ASKED, PER_ADDRESS, PER_CLIENT

from support.app import PASSWORD, Account, App, AppFactory
from support.smtp import Mailbox, smtp_server

PUBLIC_URL = "http://satchel.test"
NEW = "a brand new passphrase here"


def csrf_of(text: str) -> str:
    """The page's form's CSRF token."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert match, text[:300]
    return match.group(1)


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


def forget_limits(app: App) -> None:
    """Every test client asks from one address: the per-client count starts afresh for each test."""

    async def forget() -> None:
        client = app.services.redis.client
        async for key in client.scan_iter(match="satchel:rate:reset:*"):
            await client.delete(key)

    app.call(forget)


def ask(app: App, email: str) -> Any:
    """Ask for a link the way a browser does, without a session."""
    app.client.cookies.clear()
    page = app.client.get("/password-reset", headers=HTML)
    return app.client.post("/password-reset", data={"email": email, "csrf_token": csrf_of(page.text)}, headers=HTML)


def deliver(app: App, email: str) -> None:
    for job in job_rows(app, "mail", notice="password_reset", email=email):
        if job.status == "pending":
            run(app, job.id)


def link_in(mailbox: Mailbox, email: str) -> str:
    mail = mailbox.to(email)[-1]
    found = re.search(r"(/password-reset/[A-Za-z0-9_-]+)", mail.text)
    assert found and PUBLIC_URL + found.group(1) in mail.html
    return found.group(1)


def choose(app: App, path: str, password: str = NEW, **options: Any) -> Any:
    app.client.cookies.clear()
    page = app.client.get(path, headers=HTML)
    return app.client.post(path, data={"password": password, "csrf_token": csrf_of(page.text)}, headers=HTML, **options)


def test_forgot_password_mails_a_link_that_sets_a_new_password_and_signs_in(
    make_app: AppFactory, mailbox: Mailbox
) -> None:
    with make_app(EMAIL_URL=mailbox.url, SATCHEL_PUBLIC_URL=PUBLIC_URL) as app:
        forget_limits(app)
        root, ann = make_admin(app), app.account()
        login = app.client.get("/login", headers=HTML)
        assert 'href="/password-reset"' in login.text and "Forgot your password?" in login.text
        asked = ask(app, ann.email)
        assert asked.status_code == 200 and "If an account exists for that address, we sent it a link" in asked.text
        deliver(app, ann.email)
        [mail] = mailbox.to(ann.email)
        assert mail.message["Subject"] == "Reset your Satchel password"
        path = link_in(mailbox, ann.email)

        page = app.client.get(path, headers=HTML)
        assert page.status_code == 200 and "Choose a new password" in page.text
        assert f'value="{ann.email}" autocomplete="username" readonly' in page.text
        assert page.headers["cache-control"] == "no-store"
        assert "satchel_session" not in page.headers.get("set-cookie", ""), "no session before the password is set"
        done = choose(app, path, follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == "/files"
        files = app.client.get("/files", headers=HTML)
        assert files.status_code == 200 and "Your new password is set" in files.text and ann.email in files.text

        assert app.client.get("/api/me", headers=ann.auth).status_code == 401, "API tokens revoked"
        again = app.client.get(path, headers=HTML)
        assert again.status_code == 410 and "already used" in again.text
        app.client.cookies.clear()
        old = app.client.post("/login", data={"email": ann.email, "password": PASSWORD, "csrf_token": app.csrf()})
        assert old.status_code == 401
        (reset,) = audit(app, root, action="account.password_reset", user=ann.email)
        assert reset["details"] == {"revoked_tokens": 1, "other_links_ended": 0} and reset["client"] == "testclient"
        (asked_for,) = audit(app, root, action="account.password_reset_requested", user=ann.email)
        assert asked_for["client"] == "testclient"


def test_known_unknown_and_disabled_addresses_get_the_same_answer_and_only_the_active_one_mail(
    make_app: AppFactory, mailbox: Mailbox
) -> None:
    with make_app(EMAIL_URL=mailbox.url, SATCHEL_PUBLIC_URL=PUBLIC_URL) as app:
        forget_limits(app)
        root, ann, bob = make_admin(app), app.account(), app.account()
        assert (
            app.client.patch(f"/api/admin/users/{bob.id}", json={"disabled": True}, headers=root.auth).status_code
            == 200
        )
        unknown = f"nobody-{ann.id}@example.test"

        def answer(response: Any) -> tuple[int, str, dict[str, str]]:
            body = re.sub(r'name="csrf_token" value="[^"]+"|name="csrf-token" content="[^"]+"', "", response.text)
            varying = {"date", "set-cookie", "x-request-id", "content-length", "satchel-instance"}
            return response.status_code, body, {k: v for k, v in response.headers.items() if k not in varying}

        pages = [answer(ask(app, email)) for email in (ann.email, unknown, bob.email)]
        assert pages[0] == pages[1] == pages[2] and pages[0][0] == 200
        api = [app.client.post("/api/password-resets", json={"email": e}) for e in (ann.email, unknown, bob.email)]
        assert [(r.status_code, r.json()) for r in api] == [(202, {"detail": ASKED})] * 3, "the page's words"
        queued = [job for e in (ann.email, unknown, bob.email) for job in job_rows(app, "mail", email=e)]
        assert [sorted(job.payload) for job in queued] == [["client", "email", "nonce", "notice", "requested_at"]] * 6

        for email in (ann.email, unknown, bob.email):
            deliver(app, email)
        assert len(mailbox.to(ann.email)) == 2 and not mailbox.to(unknown) and not mailbox.to(bob.email)
        assert len(audit(app, root, action="account.password_reset_requested", user=ann.email)) == 2
        assert not audit(app, root, action="account.password_reset_requested", user=bob.email)


def test_two_uses_of_one_link_at_once_change_the_password_once(make_app: AppFactory, mailbox: Mailbox) -> None:
    with make_app(EMAIL_URL=mailbox.url, SATCHEL_PUBLIC_URL=PUBLIC_URL) as app:
        forget_limits(app)
        ann = app.account()
        ask(app, ann.email)
        deliver(app, ann.email)
        token = link_in(mailbox, ann.email).rsplit("/", 1)[1]

        def use(password: str) -> int:
            return app.client.post(f"/api/password-resets/{token}", json={"password": password}).status_code

        with ThreadPoolExecutor(2) as pool:
            statuses = sorted(pool.map(use, ["first racer's passphrase", "second racer's passphrase"]))
        assert statuses == [204, 410]
        signed_in = [
            app.client.post("/login", data={"email": ann.email, "password": p, "csrf_token": app.csrf()}).status_code
            for p in ("first racer's passphrase", "second racer's passphrase")
        ]
        assert sorted(signed_in) == [200, 401], "exactly one of the two passwords is the account's"


def test_a_newer_link_used_ends_the_older_and_a_weak_password_keeps_the_link(
    make_app: AppFactory, mailbox: Mailbox
) -> None:
    with make_app(EMAIL_URL=mailbox.url, SATCHEL_PUBLIC_URL=PUBLIC_URL) as app:
        forget_limits(app)
        ann = app.account()
        ask(app, ann.email)
        deliver(app, ann.email)
        older = link_in(mailbox, ann.email)
        ask(app, ann.email)
        deliver(app, ann.email)
        newer = link_in(mailbox, ann.email)
        weak = choose(app, newer, "short")
        assert weak.status_code == 422 and "at least 10 characters" in weak.text
        assert choose(app, newer).status_code == 200
        gone = app.client.get(older, headers=HTML)
        assert gone.status_code == 410 and "a newer one was" in gone.text
        unknown = app.client.get("/password-reset/" + "A" * 43, headers=HTML)
        assert unknown.status_code == 404 and "Ask for a new link" in unknown.text
        api = app.client.post("/api/password-resets/" + "A" * 43, json={"password": NEW})
        assert api.status_code == 404 and api.headers["content-type"] == "application/problem+json"


def test_asking_is_limited_per_address_and_per_client_with_retry_after(make_app: AppFactory) -> None:
    with make_app() as app:
        forget_limits(app)
        email = f"limit-{app.account().id}@example.test"
        per_address, _ = PER_ADDRESS
        assert [ask(app, email).status_code for _ in range(per_address)] == [200] * per_address
        refused = ask(app, email)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert "Too many reset links" in refused.text
        api = app.client.post("/api/password-resets", json={"email": email})
        assert api.status_code == 429 and api.headers["retry-after"]
        forget_limits(app)
        per_client, _ = PER_CLIENT
        answers = [
            app.client.post("/api/password-resets", json={"email": f"n{i}@example.test"}) for i in range(per_client + 1)
        ]
        assert [a.status_code for a in answers] == [202] * per_client + [429], "a client cannot mail the world"
        assert len(job_rows(app, "mail", notice="password_reset", email=email)) == per_address


def test_every_reset_form_needs_its_csrf_token(make_app: AppFactory, mailbox: Mailbox) -> None:
    with make_app(EMAIL_URL=mailbox.url, SATCHEL_PUBLIC_URL=PUBLIC_URL) as app:
        forget_limits(app)
        ann: Account = app.account()
        app.client.cookies.clear()
        refused = app.client.post("/password-reset", data={"email": ann.email}, headers=HTML)
        assert refused.status_code == 403 and not job_rows(app, "mail", notice="password_reset", email=ann.email)
        ask(app, ann.email)
        deliver(app, ann.email)
        path = link_in(mailbox, ann.email)
        app.client.cookies.clear()
        forged = app.client.post(path, data={"password": NEW}, headers=HTML)
        assert forged.status_code == 403
        assert choose(app, path).status_code == 200, "the link still works after the forged post"
