"""Upload requests in a real Chromium against a real ``satchel web``: ask for files, a stranger sends them.

The owner makes a password-protected upload link in the page; a stranger in another browser unlocks it and
sends two files with progress; a third over the link's size is refused with its reason; the owner sees what
came in. The page sends each file as resumable (tus) requests of at most SATCHEL_UPLOAD_CHUNK_BYTES (1 MiB
here): a stranger whose connection goes away reloads the page, chooses the same file, and it carries on.
Screenshots, desktop and phone, go to ``$SATCHEL_ARTIFACTS/screenshots`` for review.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Request, Route, expect
from test_browser import DESKTOP, PASSWORD, Watched

from support.processes import create_account, running_web

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

PHONE = {"width": 390, "height": 844}
REQUEST_PASSWORD = "send them over 7"
NOTE = "Your signed contract and a photo of your ID, please."
CHUNK = 1024 * 1024


@pytest.fixture
def web(base_env: dict[str, str]) -> Iterator[str]:
    with running_web({**base_env, "SATCHEL_UPLOAD_CHUNK_BYTES": str(CHUNK)}) as (_, url):
        yield url


def sign_up(web: str, watched: Watched) -> None:
    page = watched.page
    page.goto(f"{web}/signup")
    page.get_by_label("Email").fill(f"requests-{uuid.uuid4().hex[:8]}@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(f"{web}/files")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_stranger_sends_files_through_an_upload_link_and_the_owner_sees_them(
    web: str, browser: Browser, screenshots: Path, tmp_path: Path, viewport: dict[str, int]
) -> None:
    size = "desktop" if viewport is DESKTOP else "phone"
    contract, photo, huge = tmp_path / "contract signed.pdf", tmp_path / "id-photo.jpg", tmp_path / "huge.bin"
    contract.write_bytes(b"%PDF-1.7 " + os.urandom(300_000))
    photo.write_bytes(os.urandom(200_000))
    huge.write_bytes(os.urandom(700_000))

    owner = Watched(browser.new_context(viewport=viewport).new_page(), screenshots)
    sign_up(web, owner)
    page = owner.page
    page.goto(f"{web}/requests")
    expect(page.get_by_role("heading", name="No upload requests yet")).to_be_visible()
    page.get_by_role("link", name="Ask for files").first.click()
    page.get_by_label("Number of files").fill("3")
    page.get_by_label("Total size").fill("1")
    page.get_by_label("Unit").select_option("MiB")
    page.get_by_label("Password").fill(REQUEST_PASSWORD)
    page.get_by_label("Note for uploaders").fill(NOTE)
    owner.shot(f"requests-01-new-{size}")
    page.get_by_role("button", name="Create upload link").click()
    expect(page).to_have_url(re.compile(r"/requests/\d+$"))
    link = page.locator("#request-url").input_value()
    assert re.fullmatch(rf"{re.escape(web)}/r/[A-Za-z0-9_-]{{32}}", link), link
    owner.shot(f"requests-02-link-{size}")

    stranger = Watched(browser.new_context(viewport=viewport).new_page(), screenshots)
    public = stranger.page
    public.goto(link)
    expect(public.get_by_role("heading", name="This upload link is protected")).to_be_visible()
    public.get_by_label("Password").fill(REQUEST_PASSWORD)
    public.get_by_role("button", name="Unlock").click()
    expect(public.get_by_role("heading", name=re.compile("Send files to"))).to_be_visible()
    expect(public.get_by_text(NOTE)).to_be_visible()
    expect(public.locator("#request-limits")).to_contain_text("3 more files")
    stranger.shot(f"requests-03-public-{size}")

    public.locator("#request-input").set_input_files([contract, photo, huge])
    rows = public.locator("#request-uploads .upload")
    expect(rows).to_have_count(3)
    expect(public.locator("#request-uploads .upload:is(.is-done, .is-error)")).to_have_count(3, timeout=60_000)
    expect(rows.filter(has_text=contract.name)).to_have_class(re.compile("is-done"))
    expect(rows.filter(has_text=photo.name)).to_have_class(re.compile("is-done"))
    refused = rows.filter(has_text=huge.name)
    expect(refused).to_have_class(re.compile("is-error"))
    expect(refused).to_contain_text("larger than what this upload link still accepts")
    stranger.shot(f"requests-04-sent-{size}")
    # A 413 is logged by Chromium as a failed resource; it is the refusal this walk expects.
    stranger.errors = [e for e in stranger.errors if "413" not in e]
    stranger.assert_clean()

    page.reload()
    received = page.locator(".file-list li")
    expect(received).to_have_count(2)
    expect(received.first).to_contain_text(contract.name)
    expect(page.locator(".page-head")).to_contain_text("2 of 3 files received")
    owner.shot(f"requests-05-received-{size}")
    page.goto(f"{web}/files")
    expect(page.locator("table.files-table tbody tr")).to_have_count(2)
    page.goto(f"{web}/requests")
    expect(page.locator(".request-item")).to_have_count(1)
    owner.shot(f"requests-06-list-{size}")
    owner.assert_clean()

    digest = hashlib.sha256(contract.read_bytes()).hexdigest()
    page.goto(f"{web}/files")
    page.get_by_role("link", name=contract.name).click()
    expect(page.locator("body")).to_contain_text(digest[:12])


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_strangers_upload_carries_on_after_a_page_reload(
    web: str, base_env: dict[str, str], browser: Browser, screenshots: Path, tmp_path: Path, viewport: dict[str, int]
) -> None:
    size = "desktop" if viewport is DESKTOP else "phone"
    token = create_account(base_env, f"resume-{uuid.uuid4().hex[:8]}@example.test")
    owner = {"Authorization": f"Bearer {token}"}
    asked = httpx.post(f"{web}/api/requests", json={"max_files": 2, "password": REQUEST_PASSWORD}, headers=owner)
    assert asked.status_code == 201, asked.text
    link = asked.json()
    video = tmp_path / "interview recording.mp4"
    video.write_bytes(os.urandom(8 * CHUNK + 99))
    digest = hashlib.sha256(video.read_bytes()).hexdigest()

    stranger = Watched(browser.new_context(viewport=viewport).new_page(), screenshots)
    public = stranger.page
    public.on("dialog", lambda dialog: dialog.accept())  # "leave the page while uploading?": yes
    public.goto(link["url"])
    public.get_by_label("Password").fill(REQUEST_PASSWORD)
    public.get_by_role("button", name="Unlock").click()
    expect(public.get_by_role("heading", name=re.compile("Send files to"))).to_be_visible()

    creations: list[str] = []
    offsets: list[int] = []

    def count(request: Request) -> None:
        if "/uploads/" in request.url and request.method == "POST":
            creations.append(request.url)
        if "/uploads/" in request.url and request.method == "PATCH":
            offsets.append(int(request.headers["upload-offset"]))

    def stall_after_three(route: Route, request: Request) -> None:
        if request.method == "PATCH" and len(offsets) > 3:
            route.abort("connectionreset")  # the network goes away for good; the stranger gives up and reloads
            return
        route.continue_()

    public.on("request", count)
    public.route("**/uploads/**", stall_after_three)
    public.locator("#request-input").set_input_files(video)
    row = public.locator("#request-uploads .upload").filter(has_text=video.name)
    expect(row.locator(".upload-status")).to_contain_text("retrying", timeout=20_000)
    reached = max(offsets)
    assert reached >= 3 * CHUNK
    stranger.shot(f"requests-07-interrupted-{size}")

    public.unroute("**/uploads/**")
    public.reload()
    offsets.clear()
    expect(public.locator("#request-uploads .upload")).to_have_count(0)
    public.locator("#request-input").set_input_files(video)
    expect(row).to_have_class(re.compile("is-done"), timeout=60_000)
    expect(row.locator(".upload-status")).to_have_text("Sent")
    stranger.shot(f"requests-08-resumed-{size}")
    assert len(creations) == 1, "the same upload went on; no second one was started"
    assert offsets[0] >= reached, "the first request after the reload started where the server had got to"
    # The dropped requests are logged by Chromium as failed resources; they are the interruption this walk makes.
    stranger.errors = [e for e in stranger.errors if "ERR_CONNECTION_RESET" not in e]
    stranger.assert_clean()

    files = httpx.get(f"{web}/api/files", headers=owner).json()["items"]
    assert [(f["name"], f["sha256"]) for f in files] == [(video.name, digest)]
    detail = httpx.get(f"{web}/api/requests/{link['id']}", headers=owner).json()
    assert (detail["received_files"], detail["received_bytes"]) == (1, video.stat().st_size)
