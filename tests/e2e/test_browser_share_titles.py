"""A share's title in a real Chromium against a real ``satchel web``, on a desktop and on a phone.

The owner uploads two files, gives the link a title on the share form (first one it refuses, with its reason
on the form and nothing typed lost), and the stranger who opens the link sees the title as the page's
heading with the files below it. Screenshots of the form, its error and the public page, desktop and phone,
go to ``$SATCHEL_ARTIFACTS/screenshots`` for review.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from test_browser import DESKTOP, PASSWORD, Watched
from test_browser_requests import PHONE, sign_up

from support.processes import running_web

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

TITLE = "Q3 board pack <final> — figures, minutes & the signed contract for the archive"


@pytest.fixture
def web(base_env: dict[str, str]) -> Iterator[str]:
    with running_web(base_env) as (_, url):
        yield url


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_titled_link_shows_its_title_above_its_files(
    web: str, base_env: dict[str, str], browser: Browser, screenshots: Path, tmp_path: Path, viewport: dict[str, int]
) -> None:
    size = "desktop" if viewport is DESKTOP else "phone"
    minutes, figures = tmp_path / "minutes.pdf", tmp_path / "figures-2024-q3-revised-after-the-audit.xlsx"
    minutes.write_bytes(b"%PDF-1.7 " + os.urandom(200_000))
    figures.write_bytes(os.urandom(120_000))

    owner = Watched(browser.new_context(viewport=viewport).new_page(), screenshots)
    sign_up(web, owner)
    page = owner.page
    page.locator("#upload-input").set_input_files([minutes, figures])
    expect(page.locator("table.files-table tbody tr")).to_have_count(2, timeout=60_000)
    ids = [href.rsplit("/", 1)[1] for href in page.locator("table.files-table tbody a.file-name").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )]  # fmt: skip
    page.goto(f"{web}/shares/new?" + "&".join(f"file={i}" for i in ids))

    title = page.get_by_label("Title")
    expect(title).to_have_attribute("maxlength", "200")
    owner.shot(f"titles-01-share-form-{size}")
    title.fill("Q3\tboard pack")  # a tab: the browser keeps it, the server refuses it
    page.get_by_label("Note for the recipient").fill("For Thursday.")
    page.get_by_role("button", name="Create link").click()
    expect(page.get_by_role("alert")).to_have_text(
        "A title is one line of text: no line breaks, tabs or other control characters."
    )
    expect(page.get_by_label("Title")).to_have_value("Q3\tboard pack")
    expect(page.get_by_label("Note for the recipient")).to_have_value("For Thursday.")
    owner.shot(f"titles-02-share-form-refused-{size}")
    # The refusal is a 422, which Chromium logs as a failed resource: the one this walk expects.
    owner.errors = [e for e in owner.errors if "422" not in e]

    page.get_by_label("Title").fill(TITLE)
    page.get_by_role("button", name="Create link").click()
    expect(page).to_have_url(re.compile(r"/shares/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(TITLE)
    link = page.locator("#share-url").input_value()
    owner.shot(f"titles-03-owner-share-{size}")
    page.goto(f"{web}/shares")
    expect(page.get_by_role("link", name=TITLE)).to_be_visible()
    owner.shot(f"titles-04-owner-shares-{size}")
    owner.assert_clean()

    stranger = Watched(browser.new_context(viewport=viewport, accept_downloads=True).new_page(), screenshots)
    public = stranger.page
    public.goto(link)
    heading = public.get_by_role("heading", level=1)
    expect(heading).to_have_text(TITLE)
    expect(public).to_have_title(re.compile(re.escape(TITLE)))
    expect(public.locator(".public-head")).to_contain_text("2 files")
    box = heading.bounding_box()
    assert box is not None and box["x"] + box["width"] <= viewport["width"], "the title fits the screen's width"
    for name in (minutes.name, figures.name):
        listed = public.locator(".public-files li", has_text=name)
        expect(listed).to_be_visible()
        listed_box = listed.bounding_box()
        assert listed_box is not None and listed_box["y"] > box["y"] + box["height"], "files below the title"
    with public.expect_download() as info:
        public.get_by_role("link", name=f"Download {minutes.name}").click()
    got = Path(info.value.path()).read_bytes()
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(minutes.read_bytes()).hexdigest()
    stranger.shot(f"titles-05-public-share-{size}")
    stranger.assert_clean()

    # The administrator's list of every link shows it by its title too, and still fits a phone.
    admin_email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    made = subprocess.run(
        [sys.executable, "-m", "satchel", "users", "create", admin_email, "--admin", "--password-stdin"],
        input=PASSWORD + "\n", env=base_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    admin = Watched(browser.new_context(viewport=viewport).new_page(), screenshots)
    admin.page.goto(f"{web}/login")
    admin.page.get_by_label("Email").fill(admin_email)
    admin.page.get_by_label("Password").fill(PASSWORD)
    admin.page.get_by_role("button", name="Sign in").click()
    admin.page.goto(f"{web}/admin/shares")
    row = admin.page.locator("tbody tr", has_text=TITLE).first  # newest first: this walk's own
    expect(row).to_contain_text("and 1 more")  # the first file, then a count
    wider = admin.page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert wider <= 0, f"the admin's list of links is {wider}px wider than the screen"
    admin.shot(f"titles-06-admin-shares-{size}")
    admin.assert_clean()
