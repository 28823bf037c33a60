"""Previews and snippets in a real Chromium against a real ``satchel web``: look before you download.

The owner uploads a picture, a sound, a short video, a PDF and a text file full of markup, and sees each one
on its page: the picture decoded, the sound's and the video's length known (and the video seeks), the PDF in
the browser's own viewer, the text as text (its markup shown, never run). They paste a snippet and copy it
back with the button. A stranger opens a link with a download limit whose owner allowed previews, looks at
every file, and the link still has all its downloads. Screenshots, desktop and phone, go to
``$SATCHEL_ARTIFACTS/screenshots`` for review.

The media are made here, with nothing the machine lacks: the picture with Pillow, the sound with the standard
library's ``wave``, the PDF by hand (a few hundred bytes of text), and the video by Chromium itself, recording
a canvas with ``MediaRecorder`` (WebM, VP8).
"""

from __future__ import annotations

import base64
import io
import math
import re
import struct
import uuid
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, Page, expect
from test_browser import DESKTOP, PASSWORD, Watched

from support.processes import running_web

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

PHONE = {"width": 390, "height": 844}
TEXT = (
    "Notes on the page, markup and all:\n"
    '<script>window.pwned = "script"</script>\n'
    "<img src=x onerror=\"window.pwned = 'img'\">\n"
    "\tindented & done\n"
)
SNIPPET = "def greet(name):\n    # indentation is kept, and so is the last line break\n    return f'<b>{name}</b>'\n"


@pytest.fixture
def web(base_env: dict[str, str]) -> Iterator[str]:
    with running_web(base_env) as (_, url):
        yield url


def picture() -> bytes:
    image = Image.new("RGB", (640, 360), (67, 83, 209))
    draw = ImageDraw.Draw(image)
    for x in range(0, 640, 40):
        draw.rectangle((x, 200, x + 20, 360), fill=(240, 180, 40))
    draw.ellipse((420, 40, 560, 180), fill=(250, 250, 250))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def sound(seconds: float = 1.5, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        samples = (int(8000 * math.sin(2 * math.pi * 440 * n / rate)) for n in range(int(seconds * rate)))
        wav.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return out.getvalue()


def pdf() -> bytes:
    stream = b"BT /F1 28 Tf 40 80 Td (Hello from Satchel) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 180] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


RECORD_CANVAS = """async () => {
  const canvas = document.createElement("canvas");
  canvas.width = 320; canvas.height = 180;
  const paint = canvas.getContext("2d");
  const recorder = new MediaRecorder(canvas.captureStream(25), { mimeType: "video/webm;codecs=vp8" });
  const parts = [];
  recorder.ondataavailable = (event) => parts.push(event.data);
  let frame = 0;
  const timer = setInterval(() => {
    paint.fillStyle = `hsl(${frame * 9}, 65%, 50%)`; paint.fillRect(0, 0, 320, 180);
    paint.fillStyle = "#fff"; paint.fillRect(20 + frame * 6, 70, 40, 40); frame += 1;
  }, 40);
  recorder.start(100);
  await new Promise((done) => setTimeout(done, 1500));
  const stopped = new Promise((done) => (recorder.onstop = done));
  recorder.stop(); await stopped; clearInterval(timer);
  const bytes = new Uint8Array(await new Blob(parts).arrayBuffer());
  let binary = ""; for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}"""


def video(browser: Browser) -> bytes:
    """A 1.5 s WebM recorded by Chromium from a canvas: no video tool needed."""
    context = browser.new_context()
    try:
        return base64.b64decode(context.new_page().evaluate(RECORD_CANVAS))
    finally:
        context.close()


def media(tmp_path: Path, browser: Browser) -> dict[str, Path]:
    made = {
        "harbour.png": picture(),
        "tone.wav": sound(),
        "clip.webm": video(browser),
        "guide.pdf": pdf(),
        "page source.txt": TEXT.encode(),
    }
    for name, data in made.items():
        (tmp_path / name).write_bytes(data)
    return {name: tmp_path / name for name in made}


def sign_up(web: str, watched: Watched) -> None:
    page = watched.page
    page.goto(f"{web}/signup")
    page.get_by_label("Email").fill(f"previews-{uuid.uuid4().hex[:8]}@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(f"{web}/files")


def check_previews_render(page: Page, shown: dict[str, str]) -> None:
    """The preview on the page shows what it should: ``shown`` maps a kind to what is expected of it."""
    preview = page.locator("#preview")
    expect(preview).to_be_visible()
    if "image" in shown:
        page.wait_for_function("() => document.querySelector('img.preview-image')?.naturalWidth > 0")
        assert page.evaluate("document.querySelector('img.preview-image').naturalWidth") == 640
    if "audio" in shown or "video" in shown:
        element = "audio" if "audio" in shown else "video"
        page.wait_for_function(f"() => document.querySelector('{element}').readyState >= 1", timeout=20_000)
        if element == "video":
            # Recorded WebM names no length: seeking far past the end makes Chromium find it, through Range.
            page.evaluate("document.querySelector('video').currentTime = 1e6")
        page.wait_for_function(
            f"() => {{ const d = document.querySelector('{element}').duration; return isFinite(d) && d > 0; }}",
            timeout=20_000,
        )
        duration = page.evaluate(f"document.querySelector('{element}').duration")
        assert abs(duration - 1.5) < 0.3, f"{element} lasts {duration} s"
        page.evaluate(f"document.querySelector('{element}').currentTime = 0.75")  # seeking asks for a range
        page.wait_for_function(
            f"() => {{ const m = document.querySelector('{element}'); return !m.seeking && m.readyState >= 2; }}"
        )
        assert page.evaluate(f"document.querySelector('{element}').currentTime") == 0.75
    if "pdf" in shown:
        frame = page.locator("iframe.preview-frame")
        expect(frame).to_be_visible()
        src = frame.get_attribute("src") or ""
        page.wait_for_function(
            "src => [...performance.getEntriesByType('resource')].some(e => e.name.endsWith(src))", arg=src
        )
        assert any(f.url.endswith(src) for f in page.frames), "the PDF loaded in its frame"
        for _ in range(100):  # the browser's own viewer opens in a frame of its own inside ours
            if any(f.url.startswith("chrome-extension://") for f in page.frames):
                break
            page.wait_for_timeout(100)
        else:
            pytest.fail(f"no PDF viewer took the preview: {[f.url for f in page.frames]}")
        page.wait_for_timeout(1500)  # and paints its first page
    if "text" in shown:
        expect(page.locator("pre#preview-text")).to_have_text(shown["text"], use_inner_text=False)
        assert page.evaluate("window.pwned") is None, "markup in text is shown, never run"


def check_full_size(page: Page, size: str, screenshots: Path) -> None:
    """A picture opens full size in a tab of its own, as the browser shows an image, sandboxed."""
    with page.context.expect_page() as opened:
        page.get_by_role("link", name="Open full size").click()
    full = opened.value
    full.wait_for_load_state()
    assert full.evaluate("document.images.length && document.images[0].naturalWidth") == 640
    assert full.evaluate("window.origin") == "null", "a sandboxed document: an origin of its own, not the site's"
    full.screenshot(path=screenshots / f"previews-full-size-{size}.png")
    full.close()


def upload(page: Page, files: list[Path]) -> None:
    page.locator("#upload-input").set_input_files(files)
    expect(page.locator("#upload-list .upload.is-done")).to_have_count(len(files), timeout=60_000)
    expect(page.locator("tr.is-new")).to_have_count(len(files), timeout=15_000)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_files_and_a_pasted_snippet_are_shown_before_anyone_downloads_them(
    web: str, browser: Browser, screenshots: Path, tmp_path: Path, viewport: dict[str, int]
) -> None:
    size = "desktop" if viewport is DESKTOP else "phone"
    files = media(tmp_path, browser)
    context = browser.new_context(viewport=viewport)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=web)
    owner = Watched(context.new_page(), screenshots)
    page = owner.page
    sign_up(web, owner)
    upload(page, list(files.values()))

    expected = {
        "harbour.png": {"image": ""},
        "tone.wav": {"audio": ""},
        "clip.webm": {"video": ""},
        "guide.pdf": {"pdf": ""},
        "page source.txt": {"text": TEXT},
    }
    for name, shown in expected.items():
        page.goto(f"{web}/files")
        page.get_by_role("link", name=name, exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(name)
        check_previews_render(page, shown)
        owner.shot(f"previews-owner-{next(iter(shown))}-{size}")
        if "image" in shown:
            check_full_size(page, size, screenshots)

    # A snippet, pasted in the files page, shown as text and copied back exactly.
    page.goto(f"{web}/files")
    page.get_by_text("Paste text").click()
    page.get_by_label("Text", exact=True).fill(SNIPPET)
    page.get_by_label("Name").fill("greet.py")
    owner.shot(f"previews-paste-{size}")
    page.get_by_role("button", name="Save text").click()
    expect(page).to_have_url(re.compile(r"/files/[0-9a-f]{32}$"))
    expect(page.get_by_role("status").first).to_contain_text("Saved greet.py")
    check_previews_render(page, {"text": SNIPPET})
    page.get_by_role("button", name="Copy the text of greet.py").click()
    expect(page.get_by_role("button", name="Copy the text of greet.py")).to_contain_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == SNIPPET
    owner.shot(f"previews-snippet-{size}")

    # A link with a download limit whose owner allowed previews: every look is free.
    page.goto(f"{web}/files")
    page.get_by_label("Select all files on this page").check()
    page.get_by_role("button", name="Share selected").click()
    page.get_by_role("spinbutton", name="Download limit").fill("2")
    page.get_by_label("Show previews even with a download limit").check()
    page.get_by_role("button", name="Create link").click()
    expect(page).to_have_url(re.compile(r"/shares/\d+$"))
    link = page.locator("#share-url").input_value()

    stranger = Watched(browser.new_context(viewport=viewport).new_page(), screenshots)
    public = stranger.page
    public.goto(link)
    expect(public.get_by_role("heading", name="6 files shared with you")).to_be_visible()
    expect(public.get_by_text("2 downloads left")).to_be_visible()
    for name, shown in {**expected, "greet.py": {"text": SNIPPET}}.items():
        public.get_by_role("link", name=f"View {name}").click()
        check_previews_render(public, shown)
        # What the visitor sees, scrolled to the preview (a full-page shot would repeat the sticky header there).
        public.screenshot(path=screenshots / f"previews-public-{next(iter(shown))}-{size}.png")
    public.goto(link)
    expect(public.get_by_text("2 downloads left")).to_be_visible()
    page.reload()
    expect(page.locator(".details")).to_contain_text("0 of 2")

    owner.assert_clean()
    stranger.assert_clean()
