"""Invitations and the Users area end to end: a real ``satchel web`` and ``satchel worker``, a real SMTP server,
a real Chromium.

An administrator invites someone from the console; the worker mails the link; the invitee opens the mailed link,
chooses a password and lands signed in. The administrator then changes someone's quota and disables them, whose
open session ends at once. Every page is also shown on a phone. Screenshots go to ``$SATCHEL_ARTIFACTS/screenshots``.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from playwright.sync_api import Browser, expect
from test_browser import DESKTOP, PASSWORD, Watched
from test_browser_admin_console import PHONE, _fits_the_screen, _sign_in

from support.processes import SatchelProcess, create_account, running_web
from support.smtp import Mailbox, smtp_server

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow, pytest.mark.xdist_group("broker")]


@pytest.fixture
def satchel(base_env: dict[str, str], own_database: str) -> Iterator[tuple[str, dict[str, str], Mailbox]]:
    """web and worker on a database and a broker of their own, mailing through a real SMTP server."""
    parts = urlsplit(base_env["REDIS_URL"])
    broker = urlunsplit(parts._replace(path="/15" if parts.path != "/15" else "/14"))
    with smtp_server() as mailbox:
        env = {
            **base_env, "DATABASE_URL": own_database, "BROKER_URL": broker, "EMAIL_URL": mailbox.url,
            "SATCHEL_SIGNUP": "invite", "SATCHEL_PUBLIC_URL": f"http://127.0.0.1:{base_env['PORT']}",
        }  # fmt: skip
        worker = SatchelProcess("worker", "--concurrency", "1", env=env)
        try:
            worker.wait_for(lambda: any("ready" in line for line in worker.lines), what="worker ready")
            with running_web(env) as (_, url):
                yield url, env, mailbox
        finally:
            worker.stop()


def _mailed_link(mailbox: Mailbox, email: str) -> str:
    deadline = time.monotonic() + 60
    while not mailbox.to(email):
        assert time.monotonic() < deadline, f"no invitation reached {email}"
        time.sleep(0.2)
    [mail] = mailbox.to(email)
    found = re.search(r"Open your account: (\S+)", mail.text)
    assert found, mail.text
    return found.group(1)


def test_an_invitee_opens_the_mailed_link_and_an_administrator_changes_a_quota_and_disables_someone(
    satchel: tuple[str, dict[str, str], Mailbox],
    browser: Browser,
    screenshots: Path,
) -> None:
    url, env, mailbox = satchel
    run = uuid.uuid4().hex[:6]
    admin_email, alice_email, invitee = (
        f"admin-{run}@example.com",
        f"alice-{run}@example.com",
        f"ines-{run}@example.com",
    )
    create_account(env, admin_email, PASSWORD, admin=True)
    alice_auth = {"Authorization": f"Bearer {create_account(env, alice_email, PASSWORD)}"}
    uploaded = httpx.put(f"{url}/api/files/holiday.jpg", content=b"x" * 300_000, headers=alice_auth)
    assert uploaded.status_code == 201, uploaded.text
    alice_id = httpx.get(f"{url}/api/me", headers=alice_auth).json()["id"]

    context = browser.new_context(viewport=DESKTOP)
    admin = Watched(context.new_page(), screenshots)
    page = admin.page
    _sign_in(page, url, admin_email)
    alice_context = browser.new_context(viewport=DESKTOP)
    alice = Watched(alice_context.new_page(), screenshots)
    _sign_in(alice.page, url, alice_email)

    # Users: the policy in force, and everyone.
    page.get_by_role("link", name="Admin").click()
    expect(page).to_have_url(f"{url}/admin/users")
    expect(page.get_by_role("heading", level=1)).to_have_text("Users")
    expect(page.locator(".policy")).to_contain_text("invite")
    expect(page.locator(".policy")).to_contain_text("configuration, set by the environment")
    expect(page.locator("table tbody tr").filter(has_text=alice_email)).to_contain_text("293 KiB of 50 GiB")
    admin.shot("users-01-list")

    # An invitation, sent from the console and mailed by the worker.
    page.get_by_role("link", name="Add someone").click()
    admin.shot("users-02-add-someone")
    page.get_by_role("region", name="Invite by email").get_by_label("Email", exact=True).fill(invitee)
    page.get_by_role("button", name="Send the invitation").click()
    expect(page.get_by_role("status").first).to_contain_text(f"Invited {invitee}")
    shown = page.locator("#invited-link").input_value()
    expect(page.locator("table").first).to_contain_text(invitee)
    admin.shot("users-03-invited")
    link = _mailed_link(mailbox, invitee)
    assert link == shown, "the mail carries the link the administrator was shown"

    # The invitee opens the mailed link, chooses a password, and is signed in.
    invitee_context = browser.new_context(viewport=DESKTOP)
    newcomer = Watched(invitee_context.new_page(), screenshots)
    newcomer.page.goto(link)
    expect(newcomer.page.get_by_role("heading", name="Open your account")).to_be_visible()
    expect(newcomer.page.get_by_label("Email")).to_have_value(invitee)
    expect(newcomer.page.get_by_label("Email")).not_to_be_editable()
    newcomer.shot("invitation-01-open")
    newcomer.page.get_by_label("Password").fill("my very own password")
    newcomer.page.get_by_role("button", name="Open my account").click()
    expect(newcomer.page).to_have_url(f"{url}/files")
    expect(newcomer.page.get_by_role("status").first).to_contain_text("your account is open")
    newcomer.shot("invitation-02-signed-in")
    newcomer.page.goto(link)
    expect(newcomer.page.get_by_role("heading", name="This invitation does not work")).to_be_visible()
    expect(newcomer.page.locator(".alert")).to_contain_text("already used")
    newcomer.errors.remove("Failed to load resource: the server responded with a status of 410 (Gone)")  # that one

    # A quota, typed with its unit, and an account disabled.
    page.goto(f"{url}/admin/users")
    page.get_by_role("link", name=alice_email).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(alice_email)
    admin.shot("users-04-account")
    page.get_by_role("spinbutton", name="Quota").fill("2")
    page.get_by_label("Quota unit").select_option("GiB")
    page.get_by_role("button", name="Set quota").click()
    expect(page.get_by_role("status").first).to_contain_text(f"{alice_email} may now store 2 GiB.")
    page.once("dialog", lambda dialog: dialog.accept())  # "Disable …? They are signed out everywhere": yes
    page.get_by_role("button", name="Disable account").click()
    expect(page.get_by_role("status").first).to_contain_text("their sessions ended")
    expect(page.locator(".details")).to_contain_text("Disabled")
    expect(page.locator(".details")).to_contain_text("293 KiB of 2 GiB")
    admin.shot("users-05-disabled")
    alice.page.reload()
    expect(alice.page).to_have_url(re.compile(r"/login\?next=/files$"))

    # The trail says who did what.
    page.get_by_role("link", name="Changes to this account").click()
    for action in ("admin.user_disabled", "admin.quota_changed"):
        expect(page.locator("tbody")).to_contain_text(action)
    admin.shot("users-06-trail")
    for watched in (admin, alice, newcomer):
        watched.assert_clean()

    # On a phone, each page fits the screen, the invitation page included.
    second = httpx.post(
        f"{url}/api/admin/invitations", json={"email": f"phone-{run}@example.com"},
        headers={"Authorization": f"Bearer {create_account(env, f'ops-{run}@example.com', PASSWORD, admin=True)}"},
    )  # fmt: skip
    assert second.status_code == 201, second.text
    phone_context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    phone = Watched(phone_context.new_page(), screenshots)
    _sign_in(phone.page, url, admin_email)
    pages = {"users": "/admin/users", "new": "/admin/users/new", "account": f"/admin/users/{alice_id}"}
    for name, path in pages.items():
        phone.page.goto(f"{url}{path}")
        expect(phone.page.get_by_role("navigation", name="Admin")).to_be_visible()
        phone.shot(f"users-phone-{name}")
        _fits_the_screen(phone.page)
    stranger = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    visitor = Watched(stranger.new_page(), screenshots)
    visitor.page.goto(second.json()["url"])
    expect(visitor.page.get_by_role("heading", name="Open your account")).to_be_visible()
    visitor.shot("invitation-phone")
    _fits_the_screen(visitor.page)
    for watched in (phone, visitor):
        watched.assert_clean()
    for opened in (context, alice_context, invitee_context, phone_context, stranger):
        opened.close()
