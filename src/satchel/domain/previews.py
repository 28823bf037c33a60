"""Previews: which stored bytes may be shown in a browser, and as what.

The type is decided from the bytes alone (their first ``SNIFF_BYTES``), never from the name or the type the
client declared: an allowlist of signatures, each naming the one type its preview is served as. Anything else
has no preview. Markup (HTML, XHTML, SVG, XML) never has one: it is what a browser would run. Text is UTF-8
text whose first visible character is not ``<`` (a browser recognises markup by its start, and a text preview
is served as ``text/plain`` with ``nosniff`` whatever follows).

A signed ``PreviewPass`` lets a separate preview origin serve a preview without the app's cookie: it names the
file and who may see it (its owner, or a share), expires, and cannot be forged without the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from satchel.domain.errors import Forbidden, Gone, NotFound

SNIFF_BYTES = 8192  # enough for every signature below and a fair look at text
TEXT_EXCERPT_BYTES = 1_000_000  # a text preview shows the first megabyte
NO_PREVIEW = "none"  # decided: nothing to show (a file whose preview is None has not been looked at yet)
TEXT = "text/plain"
IMAGE, VIDEO, AUDIO, PDF = "image", "video", "audio", "pdf"


class NoPreview(NotFound):
    """This file has no preview: download it instead."""


class PreviewsOff(Forbidden):
    """This link's owner did not allow previews: download the file instead."""


class PreviewPassInvalid(Forbidden):
    """This preview address is not valid."""


class PreviewPassExpired(Gone):
    """This preview address has expired: reload the page it came from."""


def _riff(form: bytes) -> Callable[[bytes], bool]:
    return lambda head: head[:4] == b"RIFF" and head[8:12] == form


def _ftyp(*brands: bytes) -> Callable[[bytes], bool]:
    # ISO base media (MP4, M4A, AVIF): a first box of type "ftyp" whose major brand says what the file is.
    return lambda head: head[4:8] == b"ftyp" and head[8:12] in brands


def _bmp(head: bytes) -> bool:
    # "BM" alone starts plenty of text; a real bitmap also has zeroed reserved bytes and a known header size.
    header_size = int.from_bytes(head[14:18], "little")
    return head[:2] == b"BM" and head[6:10] == b"\0\0\0\0" and header_size in (12, 40, 52, 56, 108, 124)


def _mp3(head: bytes) -> bool:
    if head[:3] == b"ID3":
        return True
    # An MPEG audio frame: 11 sync bits, then layer III (01); anything else with the sync bits is not MP3.
    return len(head) > 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and (head[1] >> 1) & 0x3 == 0x1


def _webm(head: bytes) -> bool:
    return head[:4] == b"\x1a\x45\xdf\xa3" and b"\x42\x82\x84webm" in head[:64]  # EBML with DocType "webm"


def _ogg(video: bool) -> Callable[[bytes], bool]:
    return lambda head: head[:4] == b"OggS" and (b"\x80theora" in head) == video


_MP4_VIDEO = (b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"dash", b"M4V ", b"MSNV")

# The allowlist, tried in order: (served as, does the head match). Each type is one browsers show themselves.
SIGNATURES: tuple[tuple[str, Callable[[bytes], bool]], ...] = (
    ("image/png", lambda head: head[:8] == b"\x89PNG\r\n\x1a\n"),
    ("image/jpeg", lambda head: head[:3] == b"\xff\xd8\xff"),
    ("image/gif", lambda head: head[:6] in (b"GIF87a", b"GIF89a")),
    ("image/webp", _riff(b"WEBP")),
    ("image/bmp", _bmp),
    ("image/avif", _ftyp(b"avif", b"avis")),
    ("video/mp4", _ftyp(*_MP4_VIDEO)),
    ("audio/mp4", _ftyp(b"M4A ")),
    ("video/webm", _webm),
    ("video/ogg", _ogg(video=True)),
    ("audio/ogg", _ogg(video=False)),
    ("audio/wav", _riff(b"WAVE")),
    ("audio/flac", lambda head: head[:4] == b"fLaC"),
    ("audio/mpeg", _mp3),
    ("application/pdf", lambda head: head[:5] == b"%PDF-"),
)
_ALLOWED_CONTROLS = frozenset("\t\n\r\f\x1b")  # tabs, line ends, form feeds, and the escapes of coloured logs


def preview_type(head: bytes, *, whole: bool) -> str:
    """The type a file whose first bytes are ``head`` is previewed as, or ``NO_PREVIEW``.

    ``whole``: ``head`` is the entire file, so it cannot end inside a UTF-8 character."""
    if not head:
        return NO_PREVIEW
    for served_as, matches in SIGNATURES:
        if matches(head):
            return served_as
    return TEXT if _is_text(head, whole=whole) else NO_PREVIEW


def _is_text(head: bytes, *, whole: bool) -> bool:
    text = decode_text(head, whole=whole)
    if text is None or any((c < " " and c not in _ALLOWED_CONTROLS) or c == "\x7f" for c in text):
        return False
    visible = text.lstrip("\ufeff \t\n\r\f")
    return not visible.startswith("<")  # HTML, XHTML, SVG, XML: all begin with a tag or a declaration


def decode_text(data: bytes, *, whole: bool) -> str | None:
    """``data`` as UTF-8 text, or None when it is not. Cut from a longer file (``whole`` false), it may end
    inside a character: that character's first bytes are left out."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if whole or exc.reason != "unexpected end of data":  # broken inside, or a whole file that ends broken
            return None
        return data[: exc.start].decode("utf-8")  # valid up to where the last character began


_KINDS = {served_as: served_as.partition("/")[0] for served_as, _ in SIGNATURES} | {
    "application/pdf": PDF,
    TEXT: "text",
}


def kind_of(served_as: str | None) -> str | None:
    """How a page shows a preview served as ``served_as``: image, video, audio, pdf, text, or not at all."""
    return _KINDS.get(served_as or NO_PREVIEW)


@dataclass(frozen=True)
class PreviewPass:
    """Leave to see one file's preview until ``expires_at``: as its owner (``owner_id``) or through a share."""

    file_id: str
    expires_at: datetime
    share_id: int | None = None
    owner_id: int | None = None

    def _message(self) -> bytes:
        whose = f"s{self.share_id}" if self.share_id is not None else f"u{self.owner_id}"
        return f"{self.file_id}.{whose}.{int(self.expires_at.timestamp())}".encode()

    def sign(self, key: bytes) -> str:
        """The pass as a URL path segment: what it grants, then its HMAC-SHA256 under ``key``."""
        message = self._message()
        mac = hmac.new(key, message, hashlib.sha256).digest()
        return f"{message.decode()}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"

    @classmethod
    def redeem(cls, signed: str, key: bytes, now: datetime) -> PreviewPass:
        """The pass ``signed`` stands for; refused when it was not made with ``key``, or has expired."""
        message, _, mac = signed.rpartition(".")
        expected = base64.urlsafe_b64encode(hmac.new(key, message.encode(), hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(mac.encode(), expected.rstrip("=").encode()):
            raise PreviewPassInvalid()
        file_id, whose, expires = message.split(".")  # signed by us: always three parts, as _message makes them
        grant = cls(file_id, datetime.fromtimestamp(int(expires), UTC))
        if grant.expires_at <= now:
            raise PreviewPassExpired()
        if whose[0] == "s":
            return cls(file_id, grant.expires_at, share_id=int(whose[1:]))
        return cls(file_id, grant.expires_at, owner_id=int(whose[1:]))


PASS_LIFETIME = timedelta(hours=1)  # long enough to watch a film on the page; a reload makes a new one
