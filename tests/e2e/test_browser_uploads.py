"""Resumable uploads in a real Chromium: the page's own uploader, and a third-party tus client.

The page sends big files as tus requests of at most SATCHEL_UPLOAD_CHUNK_BYTES (1 MiB here), so a
dropped connection costs one request, and choosing the same file again after a reload carries on
from where the server says the upload stands.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, Route, expect

from support.processes import create_account, running_web

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

PASSWORD = "correct horse battery staple"
CHUNK = 1024 * 1024
CLIENTS = Path(__file__).parent / "js"  # package.json + lock of the third-party clients under test


@pytest.fixture
def web(base_env: dict[str, str]) -> Iterator[str]:
    env = {**base_env, "SATCHEL_UPLOAD_CHUNK_BYTES": str(CHUNK)}
    with running_web(env) as (_, url):
        yield url


def _sign_in(page: Page, web: str, email: str) -> None:
    page.goto(f"{web}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{web}/files")


@pytest.fixture
def signed_in(web: str, base_env: dict[str, str], browser: Browser) -> Iterator[tuple[BrowserContext, Page]]:
    email = f"resume-{uuid.uuid4().hex[:8]}@example.test"
    create_account(base_env, email, PASSWORD)
    context = browser.new_context(base_url=web)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # "leave the page while uploading?": yes
    _sign_in(page, web, email)
    yield context, page
    context.close()


@pytest.fixture(scope="session")
def tus_js_client() -> Path:
    """The tus-js-client browser bundle, installed from the npm registry as its lock file pins it."""
    bundle = CLIENTS / "node_modules" / "tus-js-client" / "dist" / "tus.min.js"
    if not bundle.exists():
        npm = shutil.which("npm")
        if npm is None:
            if os.environ.get("CI"):
                pytest.fail("npm is not installed; CI must run the third-party browser client test")
            pytest.skip("npm is not installed, so tus-js-client cannot be installed")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=CLIENTS, check=True, capture_output=True)
    return bundle


def _file(tmp_path: Path, name: str, size: int) -> tuple[Path, str]:
    data = os.urandom(size)
    path = tmp_path / name
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def _stored(page: Page, name: str) -> dict[str, Any]:
    files = page.request.get("/api/files").json()["items"]
    matching = [f for f in files if f["name"] == name]
    assert len(matching) == 1, files
    return dict(matching[0])


def test_an_upload_carries_on_after_the_connection_drops(
    signed_in: tuple[BrowserContext, Page], tmp_path: Path
) -> None:
    _, page = signed_in
    path, digest = _file(tmp_path, "field-recording.wav", 6 * CHUNK + 4321)
    patches: list[str] = []

    def drop_the_third(route: Route, request: Request) -> None:
        if request.method == "PATCH":
            patches.append(request.headers["upload-offset"])
            if len(patches) == 3:
                route.abort("connectionreset")
                return
        route.continue_()

    page.route("**/api/uploads/**", drop_the_third)
    page.locator("#upload-input").set_input_files(path)
    row = page.locator("#upload-list .upload").filter(has_text=path.name)
    expect(row.locator(".upload-status")).to_contain_text("retrying", timeout=20_000)
    expect(page.locator("tr.is-new")).to_have_count(1, timeout=60_000)
    assert _stored(page, path.name)["sha256"] == digest
    assert patches[3] == patches[2], "the dropped request was sent again from the offset the server reported"


def test_choosing_the_same_file_after_a_reload_resumes_the_upload(
    signed_in: tuple[BrowserContext, Page], tmp_path: Path
) -> None:
    _, page = signed_in
    path, digest = _file(tmp_path, "site-backup.tar", 8 * CHUNK + 99)
    creations: list[str] = []
    offsets: list[int] = []

    def count(request: Request) -> None:
        if "/api/uploads/" in request.url and request.method == "POST":
            creations.append(request.url)
        if "/api/uploads/" in request.url and request.method == "PATCH":
            offsets.append(int(request.headers["upload-offset"]))

    page.on("request", count)

    def stall_after_three(route: Route, request: Request) -> None:
        if request.method == "PATCH" and len(offsets) > 3:
            route.abort("connectionreset")  # the network goes away for good; the person gives up and reloads
            return
        route.continue_()

    page.route("**/api/uploads/**", stall_after_three)
    page.locator("#upload-input").set_input_files(path)
    row = page.locator("#upload-list .upload").filter(has_text=path.name)
    expect(row.locator(".upload-status")).to_contain_text("retrying", timeout=20_000)
    reached = max(offsets)
    assert reached >= 3 * CHUNK

    page.unroute("**/api/uploads/**")
    page.reload()
    page.on("request", count)
    offsets.clear()
    page.locator("#upload-input").set_input_files(path)
    expect(page.locator("tr.is-new")).to_have_count(1, timeout=60_000)
    assert len(creations) == 1, "the same upload went on; no second one was started"
    assert offsets[0] >= reached, "the first request after the reload started where the server had got to"
    assert _stored(page, path.name)["sha256"] == digest


def test_a_third_party_tus_client_uploads_from_the_browser(
    web: str, browser: Browser, base_env: dict[str, str], tus_js_client: Path
) -> None:
    email = f"tusjs-{uuid.uuid4().hex[:8]}@example.test"
    create_account(base_env, email, PASSWORD)
    context = browser.new_context(base_url=web, bypass_csp=True)  # the test injects the client's script
    page = context.new_page()
    _sign_in(page, web, email)
    page.add_script_tag(path=str(tus_js_client))

    result = page.evaluate(
        """async (chunkSize) => {
            const bytes = new Uint8Array(3 * chunkSize + 777);
            for (let i = 0; i < bytes.length; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
            const file = new File([bytes], "from-tus-js-client.bin", { type: "application/octet-stream" });
            const csrf = document.querySelector('meta[name="csrf-token"]').content;
            const url = await new Promise((resolve, reject) => {
                const upload = new tus.Upload(file, {
                    endpoint: "/api/uploads/",
                    chunkSize,
                    retryDelays: [0, 500, 1000],
                    headers: { "X-CSRF-Token": csrf },
                    metadata: { filename: file.name, filetype: file.type },
                    onError: reject,
                    onSuccess: () => resolve(upload.url),
                });
                upload.start();
            });
            const head = await fetch(url, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0" } });
            const digest = await crypto.subtle.digest("SHA-256", bytes);
            const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
            return { fileId: head.headers.get("Satchel-File-Id"), sha256: hex };
        }""",
        CHUNK,
    )
    stored = page.request.get(f"/api/files/{result['fileId']}").json()
    assert stored["sha256"] == result["sha256"] and stored["name"] == "from-tus-js-client.bin"
    context.close()
