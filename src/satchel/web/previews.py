"""Previews in the browser: a file's bytes shown, never rendered as a page of the app's origin.

Every preview response is sandboxed (``Content-Security-Policy: sandbox``: an opaque origin, no scripts),
``nosniff``, and ``inline`` only for the types ``domain.previews`` allows, text as ``text/plain; charset=utf-8``.
With ``SATCHEL_PREVIEW_ORIGIN`` set, previews come from that other origin instead: pages link to
``{origin}/previews/{pass}``, a signed, short-lived pass (the app's cookie does not reach that origin), the
app's own preview routes redirect there, and that origin answers nothing but previews (``PreviewOriginOnly``).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from satchel.adapters.storage import content_disposition
from satchel.bootstrap import Services
from satchel.domain.errors import NotFound
from satchel.domain.previews import TEXT, TEXT_EXCERPT_BYTES
from satchel.services.previews import Shown
from satchel.settings import origin_of
from satchel.web.downloads import requested_span, send_inline
from satchel.web.problems import problem
from satchel.web.security import ServicesDep

router = APIRouter(include_in_schema=False)  # its addresses are handed out by pages, never made by clients
PASS_PATH = "/previews/"  # noqa: S105 - a path, not a secret


def preview_policy(framed_by: str) -> str:
    """The CSP of every preview: sandboxed, loading nothing, framed only by the app's pages (a PDF's frame)."""
    return f"sandbox; default-src 'none'; img-src 'self'; media-src 'self'; frame-ancestors {framed_by}"


def _headers(shown: Shown, services: Services) -> dict[str, str]:
    public, apart = services.settings.public_url, services.settings.preview_origin
    app_origin = origin_of(public) if public and apart else None  # the settings require both, or neither
    return {
        "Content-Security-Policy": preview_policy(app_origin or "'self'"),
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": content_disposition(shown.file.name, "inline"),
        # Frame-ancestors decides where a browser reads CSP; older ones read this, which keeps them same-origin.
        "X-Frame-Options": "SAMEORIGIN",
        "Cache-Control": "private, no-store",
        "Cross-Origin-Resource-Policy": "cross-origin" if app_origin else "same-origin",
    }


def _served_as(shown: Shown) -> str:
    return f"{TEXT}; charset=utf-8" if shown.served_as == TEXT else shown.served_as


def send_preview(request: Request, services: Services, shown: Shown) -> Response:
    """The preview's bytes, or a range of them; on the app's origin when previews have an origin of their own,
    a redirect to a pass there (for API clients: pages link there directly)."""
    if services.settings.preview_origin and not on_preview_origin(request, services):
        return RedirectResponse(pass_url(services, shown), status_code=302, headers={"Cache-Control": "no-store"})
    span = requested_span(request, shown.file)
    return send_inline(
        services.storage, shown.file, span, media_type=_served_as(shown), headers=_headers(shown, services)
    )


def on_preview_origin(request: Request, services: Services) -> bool:
    origin = services.settings.preview_origin
    return origin is not None and _host(request.scope) == urlsplit(origin).netloc


def _host(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"host":
            scheme = scope.get("scheme", "http")
            return urlsplit(origin_of(f"{scheme}://{value.decode('latin-1')}")).netloc
    return ""


def pass_url(services: Services, shown: Shown) -> str:
    return f"{services.settings.preview_origin}{PASS_PATH}{services.previews.pass_for(shown)}"


@router.get(PASS_PATH + "{signed}")
async def preview_by_pass(signed: str, request: Request, services: ServicesDep) -> Response:
    if not on_preview_origin(request, services):
        raise NotFound()  # passes are for the preview origin alone: the app's origin never serves them inline
    shown = await services.previews.redeem(signed)
    return send_preview(request, services, shown)


@dataclass(frozen=True)
class OnPage:
    """A preview as a page shows it: how, from where, and (text) what it says."""

    kind: str
    src: str
    file_id: str
    name: str
    text: str | None
    truncated: bool
    limit: int = TEXT_EXCERPT_BYTES


def on_page(services: Services, shown: Shown | None) -> OnPage | None:
    """What a template needs to show ``shown``: its address on this origin, or a pass on the preview origin."""
    if shown is None or shown.kind is None:
        return None
    if services.settings.preview_origin:
        src = pass_url(services, shown)
    elif shown.share is None:
        src = f"/api/files/{shown.file.id}/preview"
    else:
        src = f"/s/{shown.share.token}/previews/{shown.file.id}"
    return OnPage(shown.kind, src, shown.file.id, shown.file.name, shown.text, shown.truncated)


class PreviewOriginOnly:
    """On the preview origin, answer previews and nothing else: no page of the app is ever served there."""

    def __init__(self, app: ASGIApp, *, origin: str) -> None:
        self.app = app
        self.authority = urlsplit(origin).netloc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _host(scope) == self.authority and not scope["path"].startswith(PASS_PATH):
            await problem(404, "The preview origin serves previews only.")(scope, receive, send)
            return
        await self.app(scope, receive, send)
