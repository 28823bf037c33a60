"""A link as a QR code: an SVG made here, at the edge, of the link's own URL and nothing else.

The picture carries the link's token, so it is sent only to the link's owner (the routes check that through the
use case), never cached by anyone between, never logged (its routes name the share by id, not by token), and
served like any content Satchel did not write itself: sandboxed, ``nosniff``, a type of its own.
"""

from __future__ import annotations

import io

import segno
from fastapi.responses import Response

from satchel.domain.requests import UploadRequest
from satchel.domain.sharing import Share
from satchel.web.security import DOWNLOAD_POLICY
from satchel.web.urls import request_url, share_url

SVG = "image/svg+xml"
# Ten units a module: a program that opens the file at its own size shows it large enough to scan (the QR code's
# width in modules plus its quiet zone, times ten), and a page scales it to any size, as it has a viewBox.
_SCALE = 10


def qr_svg(url: str) -> bytes:
    """The QR code of ``url`` as a standalone SVG: black on white (a scanner needs the contrast, in dark mode too),
    with the four-module quiet zone the standard asks for."""
    code = segno.make(url, micro=False)
    out = io.BytesIO()
    code.save(
        out, kind="svg", scale=_SCALE, border=4, dark="#000", light="#fff", omitsize=True, svgclass=None, lineclass=None
    )
    return out.getvalue()


def qr_response(url: str, filename: str) -> Response:
    """The QR code of ``url`` as an answer: shown by a page's ``<img>``, kept as ``filename`` when downloaded."""
    return Response(
        qr_svg(url),
        media_type=SVG,
        headers={
            "Content-Disposition": f'inline; filename="{filename}"',
            "Content-Security-Policy": DOWNLOAD_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


def share_qr(base: str, share: Share) -> Response:
    return qr_response(share_url(base, share.token), f"satchel-link-{share.id}.svg")


def request_qr(base: str, request: UploadRequest) -> Response:
    return qr_response(request_url(base, request.token), f"satchel-upload-link-{request.id}.svg")
