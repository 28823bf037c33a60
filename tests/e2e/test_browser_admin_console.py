"""The admin console end to end: a real ``satchel web``, a real Chromium, an administrator at work.

An owner uploads and shares, a stranger downloads; the administrator then finds the files and links of
everyone, deletes one file, revokes one link, reads all of it on the audit trail and retries a failed job.
Every area is also shown on a phone. Screenshots go to ``$SATCHEL_ARTIFACTS/screenshots``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect
from test_browser import DESKTOP, PASSWORD, Watched

from support.processes import create_account, running_web

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def console(base_env: dict[str, str], own_database: str) -> Iterator[tuple[str, dict[str, str], str]]:
    env = {**base_env, "DATABASE_URL": own_database}
    with running_web(env) as (_, url):
        yield url, env, own_database


def _put(url: str, token: str, name: str, data: bytes, share: bool) -> dict[str, object]:
    request = urllib.request.Request(
        f"{url}/api/files/{urllib.parse.quote(name)}?share={'true' if share else 'false'}",
        data=data,
        method="PUT",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request) as response:
        import json

        body: dict[str, object] = json.loads(response.read())
    return body


def _sign_in(page: Page, url: str, email: str) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{url}/files")


def _fits_the_screen(page: Page) -> None:
    wide = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    beyond = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
            .filter(e => !e.closest('.table-wrap'))
            .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
            .slice(0, 5).map(e => e.tagName + '.' + e.className)"""
    )
    assert wide <= 0, f"{page.url} is {wide}px wider than the phone's screen: {beyond}"
    # Nor does a listing scroll sideways inside its card: on a phone each row is a card of its own.
    sideways = page.evaluate(
        "[...document.querySelectorAll('.table-wrap')].map(w => w.scrollWidth - w.clientWidth).filter(d => d > 0)"
    )
    assert sideways == [], f"a listing on {page.url} scrolls sideways by {sideways}px"


def test_an_administrator_finds_deletes_revokes_reads_the_trail_and_retries(
    console: tuple[str, dict[str, str], str], browser: Browser, screenshots: Path
) -> None:
    url, env, database = console
    owner_email = f"owner-{uuid.uuid4().hex[:6]}@example.com"
    token = create_account(env, owner_email)
    admin_email = f"admin-{uuid.uuid4().hex[:6]}@example.com"
    made = subprocess.run(
        [sys.executable, "-m", "satchel", "users", "create", admin_email, "--admin", "--password-stdin"],
        input=PASSWORD + "\n", env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    report = _put(url, token, "quarterly-report.pdf", os.urandom(240_000), share=True)
    _put(url, token, "holiday photo with a rather long name.jpg", os.urandom(1_200_000), share=False)
    _put(url, token, "notes.txt", b"just notes", share=True)
    link = report["share"]["url"]  # type: ignore[index]
    with urllib.request.urlopen(f"{link}/download") as downloaded:
        assert len(downloaded.read()) == 240_000
    with psycopg.connect(database) as conn:
        conn.execute(
            "INSERT INTO jobs (id, kind, queue, payload, status, attempts, max_attempts, last_error, finished_at) "
            "VALUES (%s, 'mail', 'mail', '{}', 'failed', 5, 5, 'SMTPServerDisconnected: Connection unexpectedly "
            "closed', now())",
            ["f" * 32],
        )

    context = browser.new_context(viewport=DESKTOP)
    admin = Watched(context.new_page(), screenshots)
    page = admin.page
    _sign_in(page, url, admin_email)
    expect(page.get_by_role("link", name="Admin")).to_be_visible()

    # Files: everyone's, searched, sorted, one deleted.
    page.goto(f"{url}/admin/files")
    expect(page.get_by_role("heading", level=1)).to_have_text("All files")
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text(owner_email)
    page.get_by_label("Sort").select_option("-size")
    page.get_by_role("button", name="Show").click()
    expect(rows.first).to_contain_text("holiday photo")
    admin.shot("admin-01-files")
    page.get_by_label("Name or owner email").fill("notes")
    page.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(1)
    page.get_by_role("button", name=f"Delete notes.txt of {owner_email}").click()
    expect(page.get_by_role("status")).to_contain_text("Deleted notes.txt.")
    expect(rows).to_have_count(2)
    admin.shot("admin-02-files-deleted")

    # Shares: every link with its state; the report's link revoked.
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Shares").click()
    expect(page).to_have_url(f"{url}/admin/shares")
    share_rows = page.locator("table tbody tr")
    expect(share_rows).to_have_count(2)  # the notes' link stays, its file gone
    report_row = share_rows.filter(has_text="quarterly-report.pdf")
    expect(report_row).to_contain_text("1")
    expect(report_row.locator(".badge")).to_have_text("Active")
    admin.shot("admin-03-shares")
    report_row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status")).to_contain_text("Revoked the link")
    page.get_by_label("State").select_option("revoked")
    page.get_by_role("button", name="Show").click()
    expect(share_rows).to_have_count(1)
    expect(share_rows.first.locator(".badge")).to_have_text("Revoked")
    admin.shot("admin-04-shares-revoked")

    # Audit: what everyone did, newest first, then only the downloads.
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Audit").click()
    events = page.locator("table tbody tr")
    expect(events.first).to_contain_text("admin.share_revoked")
    for action in ("admin.file_deleted", "share.downloaded", "file.uploaded", "account.signed_in"):
        expect(page.locator("tbody")).to_contain_text(action)
    admin.shot("admin-05-audit")
    page.get_by_label("Action").select_option("share.downloaded")
    page.get_by_role("button", name="Filter").click()
    expect(events).to_have_count(1)
    expect(events.first).to_contain_text("quarterly-report.pdf")
    expect(events.first).to_contain_text("visitor")
    admin.shot("admin-06-audit-downloads")

    # Jobs: the failed one, retried.
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Jobs").click()
    expect(page.locator("tbody")).to_contain_text("SMTPServerDisconnected")
    admin.shot("admin-07-jobs")
    page.get_by_role("button", name="Retry the mail job ffffffff").click()
    expect(page.get_by_role("status")).to_contain_text("back in the queue")
    expect(page.get_by_role("heading", name="No failed jobs")).to_be_visible()
    admin.assert_clean()

    # On a phone, each area fits the screen.
    phone_context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    phone = Watched(phone_context.new_page(), screenshots)
    _sign_in(phone.page, url, admin_email)
    for area in ("files", "shares", "audit", "jobs"):
        phone.page.goto(f"{url}/admin/{area}")
        expect(phone.page.get_by_role("navigation", name="Admin")).to_be_visible()
        phone.shot(f"admin-phone-{area}")
        _fits_the_screen(phone.page)
    phone.assert_clean()
    context.close()
    phone_context.close()
