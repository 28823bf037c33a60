"""The ASGI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from satchel import __version__
from satchel.bootstrap import open_services
from satchel.runtime.logging import get_logger
from satchel.settings import Settings, get_settings
from satchel.web import health, openapi, pages, problems, public
from satchel.web.api import account, files, shares, uploads
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
    routers = (health.router, files.router, uploads.router, shares.router, account.router, public.router, pages.router)
    for router in routers:
        app.include_router(router)
    app.mount("/static/swagger", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        # Served from this server (no CDN) and without inline script, so the CSP holds here too.
        return HTMLResponse(DOCS_PAGE)

    https = (settings.public_url or "").startswith("https://")
    app.add_middleware(uploads.TusHeaders)
    app.add_middleware(SessionMiddleware, secure=https)
    app.add_middleware(SecurityHeaders, https=https)
    app.add_middleware(RequestContext, instance=settings.instance)
    return app
