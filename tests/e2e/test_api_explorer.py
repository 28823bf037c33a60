"""/docs, the API explorer: a real Chromium renders the OpenAPI document of a real ``satchel web``.

Everything the page needs comes from this server (no CDN, nothing fetched from anywhere else) and runs
under the site's own Content-Security-Policy: scripts and styles from this origin only, no inline script.
A screenshot goes to ``$SATCHEL_ARTIFACTS/screenshots`` (default ``artifacts/screenshots``) for review.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, expect

from satchel.web.security import PAGE_POLICY

from support.processes import running_web

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


@pytest.fixture
def web(base_env: dict[str, str]) -> Iterator[str]:
    with running_web(base_env) as (_, url):
        yield url


class Explorer:
    """The /docs page, with every console error and every request it makes written down."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("request", lambda request: self.requests.append(request.url))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":  # CSP violations and failed loads among them
            self.errors.append(message.text)

    def operation(self, summary: str) -> Locator:
        return self.page.locator(".opblock").filter(has=self.page.get_by_text(summary, exact=True))

    def expand(self, summary: str) -> Locator:
        operation = self.operation(summary)
        operation.locator(".opblock-summary").click()
        expect(operation.locator(".opblock-body")).to_be_visible()
        return operation


def test_the_api_explorer_renders_every_operation_from_this_server_alone(web: str, browser: Browser) -> None:
    document = httpx.get(f"{web}/openapi.json").json()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    explorer = Explorer(context.new_page())
    page = explorer.page

    response = page.goto(f"{web}/docs")
    assert response is not None and response.status == 200
    assert response.headers["content-security-policy"] == PAGE_POLICY, "the site's own policy, not a looser one"

    expect(page.locator(".information-container .title")).to_contain_text("Satchel")
    for tag in ("operations", "files", "uploads", "shares", "account", "public"):
        expect(page.locator(f"#operations-tag-{tag}")).to_be_visible()
    operations = [operation for item in document["paths"].values() for operation in item.values()]
    expect(page.locator(".opblock")).to_have_count(len(operations))
    for operation in operations:
        expect(explorer.operation(operation["summary"])).to_be_visible()

    # An operation opens on its parameters, its body and every answer it documents, errors as problem+json.
    upload = explorer.expand("Upload one file as the raw request body")
    expect(upload.locator(".parameters-container")).to_contain_text("expires_in_hours")
    expect(upload.locator(".responses-table").first).to_contain_text("413")
    expect(upload.locator(".responses-table").first).to_contain_text("application/problem+json")
    resumable = explorer.expand("Start a resumable upload (optionally with its first bytes)")
    expect(resumable.locator(".parameters-container")).to_contain_text("Tus-Resumable")

    # Trying an operation out calls this server, from the page, under the policy.
    liveness = explorer.expand("Liveness: the process is up")
    liveness.get_by_role("button", name="Try it out").click()
    liveness.get_by_role("button", name="Execute").click()
    expect(liveness.locator(".live-responses-table tbody .response-col_status").first).to_have_text("200")

    # Both ways to sign in are offered.
    page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".modal-ux")
    expect(dialog).to_contain_text("token (http, Bearer)")
    expect(dialog).to_contain_text("session (apiKey)")
    page.screenshot(path=_screenshots() / "api-explorer.png", full_page=True)

    assert explorer.errors == [], f"console errors on /docs: {explorer.errors}"
    elsewhere = [url for url in explorer.requests if not url.startswith(f"{web}/") and not url.startswith("data:")]
    assert elsewhere == [], "the explorer loads nothing from anywhere but this server"
    context.close()


def _screenshots() -> Path:
    directory = Path(os.environ.get("SATCHEL_ARTIFACTS", "artifacts")) / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory
