"""Previews through the app: shown, never rendered as a page of ours, never a way around a download limit."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from PIL import Image

from satchel.adapters.db.schema import files, shares

from support.app import App, AppFactory

PASSWORD = "open sesame"


def png(width: int = 3, height: int = 2) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(out, "PNG")
    return out.getvalue()


def _path(url: str) -> str:
    return url.removeprefix("http://satchel.test")


def preview_url(share: dict[str, Any], index: int = 0) -> str:
    return f"{_path(share['url'])}/previews/{share['files'][index]['id']}"


def assert_sandboxed(response: Any, served_as: str) -> None:
    assert response.headers["content-type"] == served_as
    policy = response.headers["content-security-policy"]
    assert policy.startswith("sandbox;") and "default-src 'none'" in policy and "frame-ancestors 'self'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"].startswith("inline;")
    assert response.headers["cache-control"] == "private, no-store"


def set_share(app: App, share_id: int, **values: Any) -> None:
    async def update() -> None:
        async with app.services.database.engine.begin() as conn:
            await conn.execute(sa.update(shares).where(shares.c.id == share_id).values(**values))

    app.call(update)


def downloads_of(app: App, who: Any, share_id: int) -> int:
    count: int = app.client.get(f"/api/shares/{share_id}", headers=who.auth).json()["download_count"]
    return count


# --- what the owner sees --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "served_as"),
    [
        ("photo.png", png(), "image/png"),
        ("notes.md", "# Notes\n\nCafé ✓\n".encode(), "text/plain; charset=utf-8"),
        ("scan.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << >> endobj\n", "application/pdf"),
        ("voice.bin", b"RIFF\x24\0\0\0WAVEfmt " + b"\0" * 40, "audio/wav"),
    ],
)
def test_an_owner_previews_a_file_sandboxed_as_the_type_its_bytes_are(
    app: App, name: str, data: bytes, served_as: str
) -> None:
    alice = app.account()
    file_id = app.upload(alice, name, data, share="false")["file"]["id"]
    response = app.client.get(f"/api/files/{file_id}/preview", headers=alice.auth)
    assert response.status_code == 200 and response.content == data
    assert_sandboxed(response, served_as)
    assert response.headers["accept-ranges"] == "bytes"


def test_the_type_a_client_declares_or_a_name_suggests_is_never_what_a_preview_is_served_as(app: App) -> None:
    alice = app.account()
    headers = {**alice.auth, "Content-Type": "text/html"}
    put = app.client.put("/api/files/page.html", content=b"just words\n", headers=headers, params={"share": "false"})
    preview = app.client.get(f"/api/files/{put.json()['file']['id']}/preview", headers=alice.auth)
    assert preview.headers["content-type"] == "text/plain; charset=utf-8", "plain text, whatever it was called"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("cat.png", b"<html><body><script>alert(document.domain)</script></body></html>"),
        ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
        ("page.xhtml", b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><script/></html>'),
        ("data.bin", bytes(range(256))),
    ],
)
def test_markup_and_unknown_bytes_have_no_preview_but_still_download(app: App, name: str, data: bytes) -> None:
    alice = app.account()
    file_id = app.upload(alice, name, data, share="false")["file"]["id"]
    refused = app.client.get(f"/api/files/{file_id}/preview", headers=alice.auth)
    assert refused.status_code == 404 and refused.headers["content-type"] == "application/problem+json"
    assert "no preview" in refused.json()["detail"]
    download = app.client.get(f"/api/files/{file_id}/content", headers=alice.auth)
    assert download.status_code == 200 and download.headers["content-disposition"].startswith("attachment;")
    page = app.client.get(f"/files/{file_id}", headers=alice.auth)
    assert 'id="preview"' not in page.text


def test_someone_elses_file_has_no_preview_for_you(app: App) -> None:
    alice, bob = app.account(), app.account()
    file_id = app.upload(alice, "photo.png", png(), share="false")["file"]["id"]
    response = app.client.get(f"/api/files/{file_id}/preview", headers=bob.auth)
    assert response.status_code == 404 and response.json()["detail"] == "No such file."
    assert app.client.get(f"/api/files/{file_id}/preview").status_code == 401


def test_a_preview_answers_ranges_so_media_can_seek(app: App) -> None:
    alice = app.account()
    data = b"RIFF\x24\0\0\0WAVEfmt " + bytes(range(256)) * 400
    share = app.upload(alice, "song.wav", data)["share"]
    url = preview_url(share)
    part = app.client.get(url, headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == data[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    assert_sandboxed(part, "audio/wav")
    seek = app.client.get(url, headers={"Range": "bytes=50000-"})
    assert seek.status_code == 206 and seek.content == data[50000:]
    outside = app.client.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert outside.status_code == 416 and outside.headers["content-range"] == f"bytes */{len(data)}"


def test_a_file_stored_before_previews_existed_is_decided_once_when_first_shown(app: App) -> None:
    alice = app.account()
    file_id = app.upload(alice, "old.png", png(), share="false")["file"]["id"]

    async def forget() -> str | None:
        async with app.services.database.engine.begin() as conn:
            await conn.execute(sa.update(files).where(files.c.id == file_id).values(preview_type=None))
            return None

    async def decided() -> str | None:
        async with app.services.database.engine.begin() as conn:
            return await conn.scalar(sa.select(files.c.preview_type).where(files.c.id == file_id))

    app.call(forget)
    assert app.client.get(f"/api/files/{file_id}/preview", headers=alice.auth).headers["content-type"] == "image/png"
    assert app.call(decided) == "image/png"


# --- what a link shows --------------------------------------------------------------------------------------


def test_a_link_without_a_limit_previews_and_counts_nothing(app: App) -> None:
    alice = app.account()
    share = app.upload(alice, "photo.png", png())["share"]
    for _ in range(3):
        response = app.client.get(preview_url(share))
        assert response.status_code == 200
        assert_sandboxed(response, "image/png")
    assert downloads_of(app, alice, share["id"]) == 0
    page = app.client.get(_path(share["url"]), headers={"Accept": "text/html"})
    assert f'src="{preview_url(share)}"' in page.text


def test_a_limited_link_previews_nothing_unless_its_owner_allowed_it_and_a_look_is_never_counted(app: App) -> None:
    alice = app.account()
    limited = app.upload(alice, "photo.png", png(), max_downloads=2)["share"]
    assert limited["allow_previews"] is False
    owner_page = app.client.get(f"/shares/{limited['id']}", headers=alice.auth)
    assert "Off: with a download limit, only downloads" in owner_page.text
    refused = app.client.get(preview_url(limited))
    assert refused.status_code == 403 and "did not allow previews" in refused.json()["detail"]
    page = app.client.get(_path(limited["url"]), headers={"Accept": "text/html"})
    assert page.status_code == 200 and "/previews/" not in page.text and 'id="preview"' not in page.text

    allowed = app.share(alice, [limited["files"][0]["id"]], max_downloads=2, allow_previews=True)
    assert allowed["allow_previews"] is True
    for _ in range(5):
        assert app.client.get(preview_url(allowed), headers={"Range": "bytes=0-9"}).status_code == 206
        assert app.client.get(preview_url(allowed)).status_code == 200
    assert downloads_of(app, alice, allowed["id"]) == 0, "five looks, no download"
    assert app.client.get(_path(allowed["url"]) + "/download").status_code == 200
    assert downloads_of(app, alice, allowed["id"]) == 1


def test_a_used_up_expired_or_revoked_link_previews_nothing(app: App) -> None:
    alice = app.account()
    file_id = app.upload(alice, "photo.png", png(), share="false")["file"]["id"]
    used_up = app.share(alice, [file_id], max_downloads=1, allow_previews=True)
    assert app.client.get(preview_url(used_up)).status_code == 200
    assert app.client.get(_path(used_up["url"]) + "/download").status_code == 200
    gone = app.client.get(preview_url(used_up))
    assert gone.status_code == 410 and "download limit" in gone.json()["detail"]

    expired = app.share(alice, [file_id])
    set_share(app, expired["id"], expires_at=sa.func.now() - timedelta(minutes=1))
    assert app.client.get(preview_url(expired)).status_code == 410

    revoked = app.share(alice, [file_id])
    assert app.client.delete(f"/api/shares/{revoked['id']}", headers=alice.auth).status_code == 204
    assert app.client.get(preview_url(revoked)).status_code == 410


def test_a_password_link_previews_only_once_unlocked(app: App) -> None:
    alice = app.account()
    file_id = app.upload(alice, "photo.png", png(), share="false")["file"]["id"]
    share = app.share(alice, [file_id], password=PASSWORD)
    assert app.client.get(preview_url(share)).status_code == 401
    assert app.client.get(preview_url(share), headers={"X-Share-Password": "wrong"}).status_code == 401
    assert app.client.get(preview_url(share), headers={"X-Share-Password": PASSWORD}).status_code == 200
    locked = app.client.get(_path(share["url"]), headers={"Accept": "text/html"})
    assert "/previews/" not in locked.text
    token = app.csrf(_path(share["url"]))
    unlocked = app.client.post(_path(share["url"]) + "/unlock", data={"password": PASSWORD, "csrf_token": token})
    assert unlocked.status_code == 200 and f'src="{preview_url(share)}"' in unlocked.text
    assert app.client.get(preview_url(share)).status_code == 200, "the unlocked session sees it"


def test_a_link_of_several_files_lets_each_previewable_one_be_viewed_on_its_page(app: App) -> None:
    alice = app.account()
    ids = [
        app.upload(alice, name, data, share="false")["file"]["id"]
        for name, data in (("a.png", png()), ("b.txt", b"bee\n"), ("c.bin", bytes(range(256))))
    ]
    share = app.share(alice, ids)
    page = app.client.get(_path(share["url"]), headers={"Accept": "text/html"})
    assert f"?preview={ids[0]}" in page.text and f"?preview={ids[1]}" in page.text
    assert f"?preview={ids[2]}" not in page.text, "no View for what has no preview"
    assert 'id="preview"' not in page.text, "nothing is shown until one is chosen"
    chosen = app.client.get(_path(share["url"]), params={"preview": ids[1]}, headers={"Accept": "text/html"})
    assert '<pre class="preview-text" id="preview-text" tabindex="0">\nbee\n</pre>' in chosen.text
    stranger = app.upload(alice, "other.png", png(), share="false")["file"]["id"]
    assert app.client.get(_path(share["url"]), params={"preview": stranger}).status_code == 404
    assert app.client.get(f"{_path(share['url'])}/previews/{stranger}").status_code == 404


# --- snippets ---------------------------------------------------------------------------------------------------

SCRIPT = '<script>alert("pwned")</script>\n  indented & <b>bold</b>\n'


def test_a_snippet_sent_with_curl_is_a_shared_text_file_shown_escaped(app: App) -> None:
    alice = app.account()
    # curl --data-binary sends application/x-www-form-urlencoded unless told otherwise: the bytes are kept as sent.
    headers = {**alice.auth, "Content-Type": "application/x-www-form-urlencoded"}
    created = app.client.post("/api/snippets", content=SCRIPT.encode(), headers=headers, params={"name": "x.html"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["file"]["name"] == "x.html" and body["file"]["size"] == len(SCRIPT.encode())
    assert body["file"]["content_type"] == "text/plain"
    assert app.client.get(_path(body["share"]["url"]) + "/download").content == SCRIPT.encode()

    for page in (
        app.client.get(_path(body["share"]["url"]), headers={"Accept": "text/html"}),
        app.client.get(f"/files/{body['file']['id']}", headers=alice.auth),
    ):
        assert (
            "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;\n  indented &amp; &lt;b&gt;bold&lt;/b&gt;" in page.text
        )
        assert '<script>alert("pwned")' not in page.text and "<b>bold</b>" not in page.text
        assert 'data-copy-target="preview-text"' in page.text
    preview = app.client.get(preview_url(body["share"]))
    assert preview.content == SCRIPT.encode()
    assert_sandboxed(preview, "text/plain; charset=utf-8")


def test_a_snippet_without_a_name_gets_one_and_counts_against_the_quota(app: App) -> None:
    alice = app.account(quota=20)
    headers = {**alice.auth, "Content-Type": "text/plain; charset=utf-8"}
    made = app.client.post("/api/snippets", content=b"twelve bytes", headers=headers, params={"share": "false"})
    assert made.status_code == 201 and made.json()["share"] is None
    assert re.fullmatch(r"snippet \d{4}-\d\d-\d\d \d\d\.\d\d\.\d\d\.txt", made.json()["file"]["name"])
    over = app.client.post("/api/snippets", content=b"twelve bytes", headers=headers)
    assert over.status_code == 413, "the quota holds for text too"


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"", "text/plain", 422),
        ("café".encode("latin-1"), "text/plain", 422),
        (b"x" * 1_000_001, "text/plain", 413),
        (b'{"text": "hi"}', "application/json", 415),
    ],
    ids=["empty", "not utf-8", "over 1 MB", "not text"],
)
def test_a_snippet_that_is_not_text_is_refused_and_nothing_is_kept(
    app: App, body: bytes, content_type: str, status: int
) -> None:
    alice = app.account()
    response = app.client.post("/api/snippets", content=body, headers={**alice.auth, "Content-Type": content_type})
    assert response.status_code == status and response.headers["content-type"] == "application/problem+json"
    assert app.client.get("/api/files", headers=alice.auth).json()["total"] == 0


def test_a_snippet_pasted_in_the_page_needs_the_forms_token_and_keeps_its_lines(app: App) -> None:
    alice = app.account()
    assert app.sign_in(alice).status_code == 303
    forged = app.client.post("/files/snippets", data={"text": "hello", "csrf_token": "forged"})
    assert forged.status_code == 403
    token = app.csrf("/files")
    saved = app.client.post(
        "/files/snippets",
        data={"text": "line one\r\n\tline <two>\r\n", "name": "paste.txt", "csrf_token": token},
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    file_id = saved.headers["location"].rsplit("/", 1)[-1]
    content = app.client.get(f"/api/files/{file_id}/content")
    assert content.content == b"line one\n\tline <two>\n", "the page's CRLF is the browser's, not the text's"
    page = app.client.get(f"/files/{file_id}")
    assert "line one\n\tline &lt;two&gt;\n</pre>" in page.text
    empty = app.client.post("/files/snippets", data={"text": "", "name": "x", "csrf_token": token})
    assert empty.status_code == 422 and "no text to keep" in empty.text
    assert 'value="x"' in empty.text, "the form keeps what was typed"


# --- a separate preview origin ----------------------------------------------------------------------------------

APP_ORIGIN, PREVIEW_ORIGIN = "http://satchel.test", "http://previews.test"


@pytest.fixture
def apart(make_app: AppFactory) -> Any:
    with make_app(SATCHEL_PUBLIC_URL=APP_ORIGIN, SATCHEL_PREVIEW_ORIGIN=PREVIEW_ORIGIN) as running:
        yield running


def _pass_src(page: str) -> str:
    match = re.search(rf'src="({re.escape(PREVIEW_ORIGIN)}/previews/[^"]+)"', page)
    assert match, page
    return match.group(1)


def test_with_a_preview_origin_pages_link_to_signed_passes_there_and_allow_only_that_origin(apart: App) -> None:
    alice = apart.account()
    share = apart.upload(alice, "photo.png", png())["share"]
    page = apart.client.get(_path(share["url"]), headers={"Accept": "text/html"})
    policy = page.headers["content-security-policy"]
    assert f"img-src 'self' data: {PREVIEW_ORIGIN};" in policy and f"frame-src {PREVIEW_ORIGIN};" in policy
    src = _pass_src(page.text)
    response = apart.client.get(src)
    assert response.status_code == 200 and response.content == png()
    assert response.headers["content-security-policy"].startswith("sandbox;")
    assert f"frame-ancestors {APP_ORIGIN}" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"].startswith("inline;")
    assert "set-cookie" not in response.headers, "the preview origin holds no session"
    ranged = apart.client.get(src, headers={"Range": "bytes=0-7"})
    assert ranged.status_code == 206 and ranged.content == png()[:8]


def test_with_a_preview_origin_the_apps_own_preview_routes_redirect_there(apart: App) -> None:
    alice = apart.account()
    upload = apart.upload(alice, "photo.png", png())
    for url, headers in (
        (preview_url(upload["share"]), {}),
        (f"/api/files/{upload['file']['id']}/preview", alice.auth),
    ):
        moved = apart.client.get(url, headers=headers, follow_redirects=False)
        assert moved.status_code == 302 and moved.headers["location"].startswith(f"{PREVIEW_ORIGIN}/previews/")
        assert apart.client.get(moved.headers["location"]).content == png()


def test_a_tampered_expired_or_misplaced_pass_is_refused(apart: App) -> None:
    from satchel.bootstrap import preview_pass_key
    from satchel.domain.clock import utcnow
    from satchel.domain.previews import PreviewPass

    alice = apart.account()
    share = apart.upload(alice, "photo.png", png())["share"]
    src = _pass_src(apart.client.get(_path(share["url"]), headers={"Accept": "text/html"}).text)
    signed = src.rsplit("/", 1)[1]
    tampered = signed.replace(f".s{share['id']}.", f".s{share['id'] + 1}.")
    assert apart.client.get(f"{PREVIEW_ORIGIN}/previews/{tampered}").status_code == 403
    file_id, share_id = share["files"][0]["id"], share["id"]
    key = preview_pass_key(apart.services.settings)
    late = PreviewPass(file_id, utcnow() - timedelta(seconds=1), share_id=share_id).sign(key)
    expired = apart.client.get(f"{PREVIEW_ORIGIN}/previews/{late}")
    assert expired.status_code == 410 and "expired" in expired.json()["detail"]
    assert apart.client.get(f"{APP_ORIGIN}/previews/{signed}").status_code == 404, "never served on the app's origin"
    assert apart.client.get(f"{PREVIEW_ORIGIN}/files").status_code == 404, "the preview origin serves nothing else"
    assert apart.client.delete(f"/api/shares/{share_id}", headers=alice.auth).status_code == 204
    assert apart.client.get(src).status_code == 410, "a pass never outlives its link"


def test_a_preview_origin_needs_the_apps_own_public_url_apart_from_it(make_app: AppFactory) -> None:
    from satchel.settings import ConfigError

    with pytest.raises(ConfigError, match="SATCHEL_PUBLIC_URL"), make_app(SATCHEL_PREVIEW_ORIGIN=PREVIEW_ORIGIN):
        pass
