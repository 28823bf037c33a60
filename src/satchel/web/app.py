"""The ASGI application factory."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import swagger_ui_bundle
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from satchel import __version__
from satchel.bootstrap import open_services
from satchel.runtime.logging import get_logger
from satchel.runtime.metrics import exposition
from satchel.settings import Settings, get_settings
from satchel.web import (
    admin,
    health,
    invitations,
    oidc,
    openapi,
    pages,
    password_resets,
    previews,
    problems,
    public,
    public_request_uploads,
    public_requests,
    requests_pages,
    tus,
)
from satchel.web.api import account, files, requests, shares, snippets, uploads
from satchel.web.api import admin_console as admin_console_api
from satchel.web.api import admin_users as admin_users_api
from satchel.web.api import password_resets as password_resets_api
from satchel.web.middleware import RequestContext
from satchel.web.security import SecurityHeaders
from satchel.web.sessions import SessionMiddleware

log = get_logger("satchel.web")
HERE = Path(__file__).parent

DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Satchel API</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/swagger/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/static/swagger/swagger-ui-bundle.js"></script>
<script src="/static/docs.js"></script></body></html>"""


# In the order FastAPI matches them: the API, then public links, then pages (whose paths are the broadest).
ROUTERS = (
    health.router,
    files.router,
    snippets.router,
    uploads.router,
    shares.router,
    requests.router,
    account.router,
    password_resets_api.router,
    public.router,
    public.status_router,
    public_request_uploads.router,
    previews.router,
    public_requests.router,
    invitations.router,
    password_resets.router,
    oidc.router,
    requests_pages.router,
    pages.router,
    admin.router,
    admin_console_api.router,
    admin_users_api.router,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the web application; backing services open in the lifespan and close with it."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = open_services(settings)
        app.state.services = services
        log.info("web.started", storage=services.storage.description)
        try:
            yield
        finally:
            await services.close()
            log.info("web.stopped")

    app = FastAPI(
        title="Satchel",
        version=__version__,
        summary="Self-hosted file sharing: upload, share by link, download.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    problems.install(app)
    openapi.describe(app, settings)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static/swagger", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        # Served from this server (no CDN) and without inline script, so the CSP holds here too.
        return HTMLResponse(DOCS_PAGE)

    if settings.metrics_token is not None:  # without a token the route does not exist: 404 like any other path
        _serve_metrics(app, settings)
    _add_middleware(app, settings)
    return app


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    """The layers every request passes, the last added outermost: request id and access log, security headers,
    the preview origin's own routes (when it has one), liveness (answered before sessions and routing), sessions,
    tus headers."""
    https = (settings.public_url or "").startswith("https://")
    app.add_middleware(tus.TusHeaders)
    app.add_middleware(SessionMiddleware, secure=https, secret=settings.secret_key.get_secret_value().encode())
    app.add_middleware(health.Liveness, release=settings.release_id)  # inside the headers, the id and the log
    if settings.preview_origin:
        app.add_middleware(previews.PreviewOriginOnly, origin=settings.preview_origin)
    app.add_middleware(SecurityHeaders, https=https, preview_origin=settings.preview_origin)
    app.add_middleware(RequestContext, instance=settings.instance)


def _serve_metrics(app: FastAPI, settings: Settings) -> None:
    """``GET /metrics`` on the public port, for ``Authorization: Bearer $SATCHEL_METRICS_TOKEN`` only."""
    assert settings.metrics_token is not None
    expected = hashlib.sha256(settings.metrics_token.get_secret_value().encode()).digest()
    registry = exposition.scrape_registry(exposition.BuildInfo(settings.release_id, __version__))

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:  # not async: reading every worker's files runs in the threadpool
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        given = hashlib.sha256(credentials.strip().encode()).digest()  # equal lengths: the compare leaks nothing
        if scheme.lower() != "bearer" or not hmac.compare_digest(given, expected):
            refused = problems.problem(401, "Send Authorization: Bearer with the metrics token.")
            refused.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return refused
        body, content_type = exposition.render(registry, request.headers.get("accept", ""))
        return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})
