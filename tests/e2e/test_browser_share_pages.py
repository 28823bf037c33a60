"""Share pages in a real Chromium against a real ``satchel web``, on a desktop and on a phone.

The owner makes a link with a download limit and finds its QR code on the link's page: Chromium's own rendering
of it scans back to the link, and the downloaded SVG does too. A recipient downloads, and the page's count drops
without a reload; the last download leaves a page that says the link is used up, with no download buttons. After
``satchel purge-expired`` the link still answers with its readable 410 page and the owner still lists it; once
its history is over, the link is unknown. The owner's lists are cards on a phone, never wider than the screen.
Screenshots of each step go to ``$SATCHEL_ARTIFACTS/screenshots`` for review.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect
from test_browser import DESKTOP, Watched
from test_browser_requests import PHONE, sign_up

from support.processes import run_satchel, running_web
from support.qr import decode_image, decode_svg

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


@pytest.fixture
def env(base_env: dict[str, str], own_database: str) -> dict[str, str]:
    # A database of this test's own: the sweep it runs must find this test's links and nobody else's.
    return {**base_env, "DATABASE_URL": own_database}


@pytest.fixture
def web(env: dict[str, str]) -> Iterator[str]:
    with running_web(env) as (_, url):
        yield url


def purge(env: dict[str, str], *flags: str) -> dict[str, object]:
    """``satchel purge-expired`` as cron runs it; what its closing event reports."""
    result = run_satchel("purge-expired", *flags, env=env)
    assert result.returncode == 0, result.stderr
    done: dict[str, object] = next(json.loads(line) for line in result.stdout.splitlines() if '"purge.done"' in line)
    return done


def fits_the_screen(page: Page) -> None:
    """Nothing scrolls sideways: neither the page nor any table's own scroller."""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways"
    wider = page.evaluate(
        "[...document.querySelectorAll('.table-wrap')].map(w => w.scrollWidth - w.clientWidth).filter(d => d > 0)"
    )
    assert wider == [], f"a table scrolls sideways by {wider}px"


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_limited_link_from_its_qr_code_to_its_last_download_and_after(
    web: str, env: dict[str, str], browser: Browser, screenshots: Path, tmp_path: Path, viewport: dict[str, int]
) -> None:
    size = "desktop" if viewport is DESKTOP else "phone"
    report, photo = tmp_path / "report.pdf", tmp_path / "photo.jpg"
    report.write_bytes(b"%PDF-1.7 " + os.urandom(40_000))
    photo.write_bytes(os.urandom(30_000))

    owner = Watched(browser.new_context(viewport=viewport, accept_downloads=True).new_page(), screenshots)
    sign_up(web, owner)
    page = owner.page
    page.locator("#upload-input").set_input_files([report, photo])
    expect(page.locator("table.files-table tbody tr")).to_have_count(2, timeout=60_000)
    ids = page.locator("table.files-table tbody a.file-name").evaluate_all(
        "links => links.map(a => a.getAttribute('href').split('/').pop())"
    )
    page.goto(f"{web}/shares/new?" + "&".join(f"file={i}" for i in ids))
    page.locator("#max_downloads").fill("2")
    page.get_by_role("button", name="Create link").click()
    expect(page).to_have_url(re.compile(r"/shares/\d+$"))
    share_id = page.url.rsplit("/", 1)[1]
    link = page.locator("#share-url").input_value()

    # The QR code, as Chromium draws it on the page, scans back to the link; so does the SVG it downloads.
    qr = page.get_by_role("img", name="QR code of this link")
    expect(qr).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=qr.element_handle())
    drawn = Image.open(io.BytesIO(qr.screenshot())).convert("L")
    assert decode_image(drawn) == [link], "the code on the page scans to the link"
    page.evaluate("window.scrollTo(0, 0)")  # the element's screenshot scrolled to it
    owner.shot(f"share-pages-01-owner-link-with-qr-{size}")
    with page.expect_download() as kept:
        page.get_by_role("link", name="Download QR code").click()
    assert kept.value.suggested_filename == f"satchel-link-{share_id}.svg"
    assert decode_svg(Path(kept.value.path()).read_bytes()) == [link]
    owner.assert_clean()

    # A recipient downloads twice; the count follows each time, and the page never reloads.
    recipient = Watched(browser.new_context(viewport=viewport, accept_downloads=True).new_page(), screenshots)
    public = recipient.page
    public.goto(link)
    left = public.locator("[data-downloads-left]")
    expect(left).to_have_text("· 2 downloads left")
    public.evaluate("window.stillTheSamePage = true")
    with public.expect_download() as first:
        public.get_by_role("link", name="Download all as .zip").click()
    assert first.value.suggested_filename.endswith(".zip")
    expect(left).to_have_text("· 1 download left", timeout=15_000)
    recipient.shot(f"share-pages-02-recipient-one-left-{size}")
    with public.expect_download() as last:
        public.get_by_role("link", name=f"Download {report.name}").click()
    assert Path(last.value.path()).read_bytes() == report.read_bytes()
    ended = public.locator("[data-link-ended]")
    expect(ended).to_be_visible(timeout=15_000)
    expect(ended).to_contain_text("This link has reached its download limit.")
    expect(public.locator("a[download]")).to_have_count(0)
    expect(left).to_have_count(0)
    assert public.evaluate("window.stillTheSamePage") is True, "no reload"
    recipient.shot(f"share-pages-03-recipient-used-up-{size}")
    # The status that said the link ended is a 410, which Chromium logs as a failed resource: the one expected.
    recipient.errors = [e for e in recipient.errors if "410 (Gone)" not in e]
    recipient.assert_clean()

    # The owner's list: a table on a desktop, cards on a phone, and never wider than the screen.
    page.goto(f"{web}/shares")
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr").first).to_contain_text("Used up")
    fits_the_screen(page)
    header_shown = page.locator("thead th").first.is_visible() and page.locator("thead").bounding_box()
    if viewport is PHONE:
        box = page.locator("tbody tr").first.bounding_box()
        assert box is not None and box["width"] <= viewport["width"]
        cell = page.locator("tbody td[data-label='Downloads']").first
        label = cell.evaluate("td => getComputedStyle(td, '::before').content")
        assert label == '"Downloads"', "each line of a card names its column"
    else:
        assert header_shown and page.locator("thead").bounding_box()["height"] > 10, "a table with its header"
    owner.shot(f"share-pages-04-owner-shares-{size}")

    # The sweep deals with it: the link still says why it ended, and the owner still lists it.
    swept = purge(env)
    assert swept["shares"] == 1 and swept["history"] == 0
    public.reload()
    expect(public.get_by_role("heading", level=1)).to_have_text("This link no longer works")
    expect(public.get_by_text("This link has reached its download limit.")).to_be_visible()
    recipient.shot(f"share-pages-05-recipient-410-after-sweep-{size}")
    page.goto(f"{web}/shares/{share_id}")
    expect(page.get_by_text("This link no longer works: it is used up.")).to_be_visible()
    expect(page.get_by_role("img", name="QR code of this link")).to_have_count(0)
    fits_the_screen(page)
    owner.shot(f"share-pages-06-owner-ended-link-{size}")

    # Once its history is over (moved 31 days back here, as time would), the next sweep forgets it.
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("UPDATE shares SET swept_at = swept_at - interval '31 days' WHERE id = %s", [int(share_id)])
    assert purge(env, "--dry-run")["history"] == 1
    assert purge(env)["history"] == 1 and purge(env)["history"] == 0
    public.reload()
    expect(public.get_by_role("heading", level=1)).to_have_text("Not Found")
    recipient.shot(f"share-pages-07-recipient-404-after-history-{size}")
    page.goto(f"{web}/shares")
    expect(page.get_by_role("heading", name="No links yet")).to_be_visible()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_an_upload_link_has_its_qr_code_and_the_requests_list_fits_a_phone(
    web: str, browser: Browser, screenshots: Path, viewport: dict[str, int]
) -> None:
    size = "desktop" if viewport is DESKTOP else "phone"
    owner = Watched(browser.new_context(viewport=viewport).new_page(), screenshots)
    sign_up(web, owner)
    page = owner.page
    page.goto(f"{web}/requests/new")
    page.get_by_label("Note for uploaders").fill("The signed contract, please.")
    page.get_by_role("button", name="Create upload link").click()
    expect(page).to_have_url(re.compile(r"/requests/\d+$"))
    link = page.locator("#request-url").input_value()
    qr = page.get_by_role("img", name="QR code of this upload link")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=qr.element_handle())
    assert decode_image(Image.open(io.BytesIO(qr.screenshot())).convert("L")) == [link]
    page.evaluate("window.scrollTo(0, 0)")
    fits_the_screen(page)
    owner.shot(f"share-pages-08-upload-link-with-qr-{size}")
    page.goto(f"{web}/requests")
    fits_the_screen(page)
    owner.shot(f"share-pages-09-requests-{size}")
    owner.assert_clean()
