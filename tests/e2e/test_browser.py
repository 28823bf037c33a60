"""The browser interface end to end: a real ``satchel web`` driven by a real Chromium.

Sign up, upload two files through the page, share them with a password, then open the link
as a stranger and check every downloaded byte. A full-page screenshot of each page visited
goes to ``$SATCHEL_ARTIFACTS/screenshots`` (default ``artifacts/screenshots``) for review.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from support.processes import running_web

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

DESKTOP = {"width": 1280, "height": 860}
PASSWORD = "correct horse battery staple"
SHARE_PASSWORD = "open sesame 42"
NOTE = "The draft and my notes, as promised."


@pytest.fixture
def web(base_env: dict[str, str]) -> Iterator[str]:
    with running_web(base_env) as (_, url):
        yield url


class Watched:
    """A page whose console errors (CSP violations among them) and failed scripts fail the test."""

    def __init__(self, page: Page, screenshots: Path) -> None:
        self.page = page
        self.errors: list[str] = []
        self._screenshots = screenshots
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=self._screenshots / f"{name}.png", full_page=True)

    def assert_clean(self) -> None:
        # A failed upload or a wrong password is answered with 4xx, which Chromium also logs; none is expected here
        # except the one deliberate wrong password.
        unexpected = [e for e in self.errors if "401 (Unauthorized)" not in e]
        assert unexpected == [], f"console errors in the browser: {unexpected}"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_sign_up_upload_share_and_download_as_a_stranger(
    web: str, browser: Browser, screenshots: Path, tmp_path: Path
) -> None:
    big = tmp_path / "holiday-photos.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024 + 123))
    small = tmp_path / "résumé notes.txt"
    small.write_text("Notes on the résumé: ✓ tighten the intro, ✓ add the 2024 project.\n", encoding="utf-8")
    originals = {big.name: sha256(big.read_bytes()), small.name: sha256(small.read_bytes())}

    owner_context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    owner_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=web)
    owner = Watched(owner_context.new_page(), screenshots)
    page = owner.page

    # Home, then sign up.
    page.goto(f"{web}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Send files with a link")
    owner.shot("01-home")
    page.get_by_role("link", name="Create an account").click()
    expect(page).to_have_url(f"{web}/signup")
    owner.shot("02-signup")
    page.get_by_label("Email").fill(f"browser-{uuid.uuid4().hex[:8]}@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()

    # The files page, empty.
    expect(page).to_have_url(f"{web}/files")
    expect(page.get_by_role("status")).to_contain_text("Welcome to Satchel")
    expect(page.get_by_role("heading", name="No files yet")).to_be_visible()
    owner.shot("03-files-empty")

    # Upload both through the file input, slowed down so the progress bars are seen moving.
    cdp = owner_context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 1_000_000},
    )
    page.locator("#upload-input").set_input_files([big, small])
    uploads = page.locator("#upload-list .upload")
    expect(uploads).to_have_count(2)
    expect(page.locator("#upload-list progress")).to_have_count(2)
    big_row = uploads.filter(has_text=big.name)
    expect(big_row.get_by_role("button", name=f"Cancel {big.name}")).to_be_visible()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#upload-list progress')].some(p => p.value > 0 && p.value < p.max)"
    )
    owner.shot("04-files-uploading")

    # Each row settles (Done, or the server's reason); when both are done the page reloads itself,
    # the new rows in the table are marked and the upload rows still say Done.
    settled = page.locator("#upload-list .upload:is(.is-done, .is-error, .is-cancelled)")
    expect(settled).to_have_count(2, timeout=60_000)
    failed = page.locator("#upload-list .upload.is-error").all_inner_texts()
    assert failed == [], f"uploads failed in the browser: {failed}"
    expect(page.locator("tr.is-new")).to_have_count(2, timeout=15_000)
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    expect(page.locator("#upload-list .upload.is-done")).to_have_count(2)
    for row in page.locator("#upload-list .upload").all():
        expect(row.locator(".upload-status")).to_have_text("Done")
    table = page.locator("table.files-table tbody")
    expect(table.locator("tr")).to_have_count(2)
    expect(table).to_contain_text(big.name)
    expect(table).to_contain_text(small.name)
    expect(table).to_contain_text("3 MiB")
    owner.shot("05-files-uploaded")

    # Select both and share them.
    page.get_by_label(f"Select {big.name}").check()
    page.get_by_label(f"Select {small.name}").check()
    expect(page.locator("#selection-count")).to_have_text("2 files selected")
    page.get_by_role("button", name="Share selected").click()
    expect(page).to_have_url(re.compile(r"/shares/new\?file=.+&file=.+"))
    expect(page.get_by_role("heading", name="2 files in this link")).to_be_visible()
    expect(page.get_by_label("Link expires after")).to_have_value("168")
    owner.shot("06-share-new")
    page.get_by_label("Password").fill(SHARE_PASSWORD)
    page.get_by_label("Note for the recipient").fill(NOTE)
    page.get_by_role("button", name="Create link").click()

    # The owner's view of the share: copy its link.
    expect(page).to_have_url(re.compile(r"/shares/\d+$"))
    expect(page.get_by_role("status").first).to_contain_text("Your link is ready")
    link = page.locator("#share-url").input_value()
    assert re.fullmatch(rf"{re.escape(web)}/s/[A-Za-z0-9_-]{{20,}}", link), link
    expect(page.locator(".details")).to_contain_text(NOTE)
    page.get_by_role("button", name="Copy link").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == link
    owner.shot("07-share")

    # A stranger opens the link: password first.
    stranger_context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    stranger = Watched(stranger_context.new_page(), screenshots)
    public = stranger.page
    public.goto(link)
    expect(public.get_by_role("heading", name="This link is protected")).to_be_visible()
    expect(public.get_by_text("2 files shared with you")).to_have_count(0)
    stranger.shot("08-public-password")
    public.get_by_label("Password").fill("not the password")
    public.get_by_role("button", name="Unlock").click()
    expect(public.get_by_role("alert")).to_have_text("That password is not right.")
    public.get_by_label("Password").fill(SHARE_PASSWORD)
    public.get_by_role("button", name="Unlock").click()

    expect(public).to_have_url(link)
    expect(public.get_by_role("heading", name="2 files shared with you")).to_be_visible()
    expect(public.get_by_text(NOTE)).to_be_visible()
    expect(public.get_by_role("link", name="Download all as .zip")).to_be_visible()
    stranger.shot("09-public-share")

    downloads = public.locator("a.download")
    expect(downloads).to_have_count(2)
    for name, digest in originals.items():
        with public.expect_download() as info:
            public.get_by_role("link", name=f"Download {name}").click()
        download = info.value
        assert download.failure() is None
        assert download.suggested_filename == name
        assert sha256(Path(download.path()).read_bytes()) == digest, f"{name} came back different"

    # The owner sees both downloads counted.
    page.reload()
    expect(page.locator(".details")).to_contain_text("2 (no limit)")

    # The account page, and a new API token shown once with its curl example.
    page.get_by_role("link", name="Account").click()
    expect(page.get_by_role("heading", name="API tokens")).to_be_visible()
    owner.shot("10-account")
    page.get_by_label("New token name").fill("laptop backup script")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token-value").input_value()
    assert len(token) > 20
    expect(page.locator("#curl-example")).to_have_text(
        f'curl -T report.pdf -H "Authorization: Bearer {token}" {web}/api/files/report.pdf'
    )
    expect(page.locator(".token-list")).to_contain_text("laptop backup script")
    owner.shot("11-account-new-token")

    owner.assert_clean()
    stranger.assert_clean()
    owner_context.close()
    stranger_context.close()


def test_an_unknown_share_link_is_a_readable_page(web: str, browser: Browser, screenshots: Path) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    response = page.goto(f"{web}/s/no-such-link-at-all")
    assert response is not None
    assert response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    expect(page.get_by_role("heading", level=1)).to_have_text("Not Found")
    expect(page.get_by_text("There is no such link.")).to_be_visible()
    expect(page.get_by_role("link", name="Go to the home page")).to_be_visible()
    page.screenshot(path=screenshots / "12-not-found.png", full_page=True)
    context.close()
