"""The ASGI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from satchel import __version__
from satchel.bootstrap import open_services
from satchel.runtime.logging import get_logger
from satchel.settings import Settings, get_settings
from satchel.web import health, problems
from satchel.web.middleware import RequestContext

log = get_logger("satchel.web")


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

    app = FastAPI(title="Satchel", version=__version__, lifespan=lifespan, docs_url="/docs", redoc_url=None)
    problems.install(app)
    app.include_router(health.router)
    app.add_middleware(RequestContext)
    return app
