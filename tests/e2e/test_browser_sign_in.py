"""Getting into an account in a real Chromium: "Forgot your password?" through a real ``satchel worker`` and SMTP
server, and "Sign in with …" through a real OpenID Connect provider's own pages, on a desktop and on a phone.
Screenshots go to ``$SATCHEL_ARTIFACTS/screenshots``.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import oidc_provider_mock
import pytest
from playwright.sync_api import Browser, expect
from test_browser import DESKTOP, PASSWORD, Watched
from test_browser_admin_console import PHONE, _fits_the_screen

from support.processes import SatchelProcess, create_account, running_web
from support.smtp import Mailbox, smtp_server

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow, pytest.mark.xdist_group("broker")]


@pytest.fixture
def satchel(base_env: dict[str, str], own_database: str) -> Iterator[tuple[str, dict[str, str], Mailbox, str]]:
    """web and worker on a database and a broker of their own, mailing through a real SMTP server, with a real
    OpenID Connect provider."""
    parts = urlsplit(base_env["REDIS_URL"])
    broker = urlunsplit(parts._replace(path="/15" if parts.path != "/15" else "/14"))
    with smtp_server() as mailbox, oidc_provider_mock.run_server_in_thread() as provider:
        issuer = f"http://localhost:{provider.server_port}"
        env = {
            **base_env, "DATABASE_URL": own_database, "BROKER_URL": broker, "EMAIL_URL": mailbox.url,
            "SATCHEL_SIGNUP": "open", "SATCHEL_PUBLIC_URL": f"http://127.0.0.1:{base_env['PORT']}",
            "OIDC_ISSUER": issuer, "OIDC_CLIENT_ID": "satchel", "OIDC_CLIENT_SECRET": "a client secret",
            "OIDC_PROVIDER_NAME": "Example ID",
        }  # fmt: skip
        worker = SatchelProcess("worker", "--concurrency", "1", env=env)
        try:
            worker.wait_for(lambda: any("ready" in line for line in worker.lines), what="worker ready")
            with running_web(env) as (_, url):
                yield url, env, mailbox, issuer
        finally:
            worker.stop()


def _mailed_link(mailbox: Mailbox, email: str) -> str:
    deadline = time.monotonic() + 60
    while not mailbox.to(email):
        assert time.monotonic() < deadline, f"no reset link reached {email}"
        time.sleep(0.2)
    [mail] = mailbox.to(email)
    found = re.search(r"Choose a new password: (\S+)", mail.text)
    assert found, mail.text
    return found.group(1)


def test_forgot_password_by_mail_and_sign_in_through_the_provider_on_desktop_and_phone(
    satchel: tuple[str, dict[str, str], Mailbox, str],
    browser: Browser,
    screenshots: Path,
) -> None:
    url, env, mailbox, issuer = satchel
    run = uuid.uuid4().hex[:6]
    ann = f"ann-{run}@example.com"
    create_account(env, ann, PASSWORD)

    # Forgot the password: the sign-in page's link, the address, the mail, a new password, signed in.
    context = browser.new_context(viewport=DESKTOP)
    watched = Watched(context.new_page(), screenshots)
    page = watched.page
    page.goto(f"{url}/login")
    expect(page.get_by_role("link", name="Sign in with Example ID")).to_be_visible()
    watched.shot("sign-in-01-login")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page.get_by_role("heading", name="Reset your password")).to_be_visible()
    watched.shot("sign-in-02-forgot")
    page.get_by_label("Email").fill(ann)
    page.get_by_role("button", name="Send me a link").click()
    expect(page.get_by_role("status").first).to_contain_text("If an account exists for that address")
    watched.shot("sign-in-03-sent")
    link = _mailed_link(mailbox, ann)
    page.goto(link)
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    expect(page.get_by_label("Email")).to_have_value(ann)
    watched.shot("sign-in-04-choose")
    page.get_by_label("New password").fill("my brand new password")
    page.get_by_role("button", name="Set my new password").click()
    expect(page).to_have_url(f"{url}/files")
    expect(page.get_by_role("status").first).to_contain_text("Your new password is set")
    watched.shot("sign-in-05-signed-in")
    watched.assert_clean()
    context.close()

    # Sign in with the provider: its own pages, then back to Satchel's files page, linked by the verified address.
    claims = {"email": ann, "email_verified": True, "name": "Ann"}
    assert httpx.put(f"{issuer}/users/{quote('ann-' + run)}", json=claims).status_code == 204
    context = browser.new_context(viewport=DESKTOP)
    watched = Watched(context.new_page(), screenshots)
    page = watched.page
    page.goto(f"{url}/login")
    page.get_by_role("link", name="Sign in with Example ID").click()
    expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()
    assert page.url.startswith(issuer)
    watched.shot("sign-in-06-provider")
    page.get_by_placeholder("sub").fill(f"ann-{run}")
    page.get_by_role("button", name="Authorize").click()
    expect(page).to_have_url(f"{url}/files")
    expect(page.get_by_role("heading", name="Your files")).to_be_visible()
    assert page.request.get(f"{url}/api/me").json()["email"] == ann, "the account the mail reset"
    watched.shot("sign-in-07-back-in-satchel")
    # The provider's own page asks a CDN for its stylesheet (no network here) and has no favicon: not ours.
    for theirs in ("net::ERR_NAME_NOT_RESOLVED", "status of 404 (NOT FOUND)"):
        watched.errors[:] = [e for e in watched.errors if theirs not in e]
    watched.assert_clean()
    context.close()

    # On a phone: the sign-in, forgot and choose pages fit the screen, and so does a refused sign-in's page.
    phone_context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    phone = Watched(phone_context.new_page(), screenshots)
    for name, path in {"login": "/login", "forgot": "/password-reset"}.items():
        phone.page.goto(f"{url}{path}")
        phone.shot(f"sign-in-phone-{name}")
        _fits_the_screen(phone.page)
    phone.page.goto(link)
    expect(phone.page.get_by_role("heading", name="This link does not work")).to_be_visible()
    phone.errors.remove("Failed to load resource: the server responded with a status of 410 (Gone)")
    phone.shot("sign-in-phone-used-link")
    _fits_the_screen(phone.page)
    phone.page.goto(f"{url}/auth/oidc/callback?state=forged&code=x")
    expect(phone.page.get_by_role("heading", name="Signing in with Example ID did not work")).to_be_visible()
    phone.errors.remove("Failed to load resource: the server responded with a status of 400 (Bad Request)")
    phone.shot("sign-in-phone-refused")
    _fits_the_screen(phone.page)
    phone.assert_clean()
    phone_context.close()
