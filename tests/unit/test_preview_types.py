"""Which bytes may be previewed, and as what: decided from the bytes alone, markup never."""

from __future__ import annotations

import io
import struct
import wave
from datetime import UTC, datetime, timedelta

import pytest

from satchel.domain.previews import (
    NO_PREVIEW,
    SNIFF_BYTES,
    PreviewPass,
    PreviewPassExpired,
    PreviewPassInvalid,
    decode_text,
    kind_of,
    preview_type,
)


def wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes(b"\0\0" * 800)
    return out.getvalue()


def bmp() -> bytes:
    pixels = b"\0\0\xff\0"  # one blue pixel, padded to 4 bytes
    header = struct.pack("<2sIHHI", b"BM", 14 + 40 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, 1, 1, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return header + info + pixels


PREVIEWABLE = {
    "image/png": b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + b"\0" * 40,
    "image/jpeg": b"\xff\xd8\xff\xe0\0\x10JFIF\0" + b"\0" * 40,
    "image/gif": b"GIF89a\x01\0\x01\0\x80\0\0" + b"\0" * 20,
    "image/webp": b"RIFF\x24\0\0\0WEBPVP8 " + b"\0" * 30,
    "image/bmp": bmp(),
    "image/avif": b"\0\0\0\x1cftypavif\0\0\0\0avifmif1" + b"\0" * 20,
    "video/mp4": b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41" + b"\0" * 20,
    "audio/mp4": b"\0\0\0\x20ftypM4A \0\0\0\0M4A mp42isom" + b"\0" * 20,
    "video/webm": b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm\x42\x87\x81\x04" + b"\0" * 20,
    "video/ogg": b"OggS\0\x02" + b"\0" * 22 + b"\x80theora" + b"\0" * 20,
    "audio/ogg": b"OggS\0\x02" + b"\0" * 22 + b"\x01vorbis" + b"\0" * 20,
    "audio/wav": wav(),
    "audio/flac": b"fLaC\0\0\0\x22" + b"\0" * 40,
    "audio/mpeg": b"ID3\x04\0\0\0\0\0\x0a" + b"\0" * 40,
    "application/pdf": b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
    "text/plain": "def greet(name):\n    return f'héllo {name} ✓'\n".encode(),
}


@pytest.mark.parametrize("served_as", sorted(PREVIEWABLE))
def test_every_previewable_type_is_recognised_by_its_bytes(served_as: str) -> None:
    assert preview_type(PREVIEWABLE[served_as], whole=True) == served_as
    assert kind_of(served_as) in ("image", "video", "audio", "pdf", "text")


def test_an_mp3_without_a_tag_is_recognised_by_its_frame_header() -> None:
    assert preview_type(b"\xff\xfb\x90\x64" + b"\0" * 100, whole=True) == "audio/mpeg"
    assert preview_type(b"\xff\xf1\x50\x80" + b"\0" * 100, whole=True) == NO_PREVIEW, "AAC's frame is not MP3's"


MARKUP = {
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><circle r="4"/></svg>',
    "svg with an xml declaration": b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>',
    "html": b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>",
    "html in lower case after white space": b"\n\n   <html><script>alert(1)</script>",
    "xhtml": b'<?xml version="1.0" encoding="UTF-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><body/></html>',
    "xml": b"<?xml version='1.0'?><note><to>you</to></note>",
    "html after a byte-order mark": "\ufeff<script>alert(1)</script>".encode(),
    "an html comment": b"<!-- hello --><img src=x onerror=alert(1)>",
    "a bare script tag": b"<script>alert(1)</script>",
}


@pytest.mark.parametrize("name", sorted(MARKUP))
def test_markup_is_never_previewed(name: str) -> None:
    assert preview_type(MARKUP[name], whole=True) == NO_PREVIEW


def test_a_file_named_png_that_holds_html_has_no_preview() -> None:
    # The name takes no part in the decision: there is no name to give.
    assert preview_type(b"<html><body onload=alert(1)>photo.png</body></html>", whole=True) == NO_PREVIEW


def test_a_polyglot_is_previewed_only_as_what_its_first_bytes_are() -> None:
    gif_and_script = b"GIF89a/*\x01\0\x01\0\x80\0\0*/=alert(1);<script>alert(2)</script>"
    assert preview_type(gif_and_script, whole=True) == "image/gif", "served as an image, which runs nothing"
    html_then_png = b"<html><script>alert(1)</script></html>" + PREVIEWABLE["image/png"]
    assert preview_type(html_then_png, whole=True) == NO_PREVIEW
    pdf_and_html = b"%PDF-1.4\n<html><script>alert(1)</script></html>"
    assert preview_type(pdf_and_html, whole=True) == "application/pdf", "shown only by the PDF viewer"


def test_an_empty_file_has_no_preview() -> None:
    assert preview_type(b"", whole=True) == NO_PREVIEW


@pytest.mark.parametrize(
    "data",
    [
        "café crème".encode("latin-1"),
        "notes".encode("utf-16"),
        b"binary\0data\0with nuls",
        b"\x7fELF\x02\x01\x01\0" + b"\0" * 40,
        b"PK\x03\x04" + b"\0" * 40,
    ],
    ids=["latin-1", "utf-16", "nul bytes", "an executable", "a zip"],
)
def test_bytes_that_are_not_utf8_text_have_no_preview(data: bytes) -> None:
    assert preview_type(data, whole=True) == NO_PREVIEW


def test_text_that_merely_starts_like_a_signature_is_text() -> None:
    assert preview_type(b"BMW 320d, blue, one owner\n", whole=True) == "text/plain"
    assert preview_type(b"RIFF raff and other words\n", whole=True) == "text/plain"


def test_text_mentioning_markup_after_its_start_is_text_served_as_such() -> None:
    assert preview_type(b"To run it: paste <script>alert(1)</script> into the page.\n", whole=True) == "text/plain"


def test_the_first_bytes_of_longer_text_may_end_inside_a_character() -> None:
    text = ("é" * SNIFF_BYTES).encode()[: SNIFF_BYTES - 1]  # cut in the middle of the last é
    assert preview_type(text, whole=False) == "text/plain"
    assert preview_type(text, whole=True) == NO_PREVIEW, "a whole file that ends broken is not text"
    assert decode_text(text, whole=False) == "é" * (SNIFF_BYTES // 2 - 1)


def test_unknown_and_undecided_types_show_nothing() -> None:
    assert kind_of(NO_PREVIEW) is None
    assert kind_of(None) is None
    assert kind_of("image/svg+xml") is None
    assert kind_of("text/html") is None


KEY = b"k" * 32
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_a_signed_pass_grants_what_it_says_until_it_expires() -> None:
    grant = PreviewPass("a" * 32, NOW + timedelta(minutes=5), share_id=42)
    signed = grant.sign(KEY)
    assert PreviewPass.redeem(signed, KEY, NOW) == grant
    own = PreviewPass("b" * 32, NOW + timedelta(minutes=5), owner_id=7)
    assert PreviewPass.redeem(own.sign(KEY), KEY, NOW) == own
    with pytest.raises(PreviewPassExpired):
        PreviewPass.redeem(signed, KEY, NOW + timedelta(minutes=5))


@pytest.mark.parametrize(
    "tamper",
    [
        lambda s: s.replace(".s42.", ".s43."),
        lambda s: s.replace("a" * 32, "b" * 32),
        lambda s: s.rsplit(".", 2)[0] + "." + str(int(s.rsplit(".", 2)[1]) + 3600) + "." + s.rsplit(".", 1)[1],
        lambda s: s[:-2] + ("AA" if not s.endswith("AA") else "BB"),
        lambda s: s.rsplit(".", 1)[0],
        lambda s: "",
        lambda s: "é.." + s,
    ],
    ids=["another share", "another file", "a later expiry", "another signature", "no signature", "empty", "junk"],
)
def test_a_tampered_pass_is_refused(tamper: object) -> None:
    signed = PreviewPass("a" * 32, NOW + timedelta(minutes=5), share_id=42).sign(KEY)
    assert callable(tamper)
    with pytest.raises(PreviewPassInvalid):
        PreviewPass.redeem(tamper(signed), KEY, NOW)


def test_a_pass_signed_with_another_key_is_refused() -> None:
    signed = PreviewPass("a" * 32, NOW + timedelta(minutes=5), owner_id=1).sign(b"x" * 32)
    with pytest.raises(PreviewPassInvalid):
        PreviewPass.redeem(signed, KEY, NOW)
