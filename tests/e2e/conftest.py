"""What the browser tests share: Debian's Chromium, driven by Playwright (no browser download)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")  # not longer: Playwright's event loop must not outlive the browser tests
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is not installed (apt-get install chromium) so the browser tests cannot run"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run them.")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    """Where the browser walks leave their screenshots, to be looked at: ``$SATCHEL_ARTIFACTS/screenshots``."""
    directory = Path(os.environ.get("SATCHEL_ARTIFACTS", "artifacts")) / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory
