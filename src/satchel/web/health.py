"""``/healthz`` (alive) and ``/readyz`` (ready for traffic) for orchestrators (factor IX)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from satchel import __version__
from satchel.runtime import lifecycle
from satchel.services.readiness import check_readiness
from satchel.web.api.schemas import LivenessOut, ReadinessOut
from satchel.web.security import ServicesDep

router = APIRouter(tags=["operations"])
_NO_STORE = {"Cache-Control": {"description": "`no-store`", "required": True, "schema": {"type": "string"}}}


@router.get("/healthz", summary="Liveness: the process is up", response_model=LivenessOut)
async def healthz(services: ServicesDep) -> dict[str, Any]:
    return liveness(services.settings.release_id)


def liveness(release: str) -> dict[str, Any]:
    return {"status": "ok", "release": release, "version": __version__}


class Liveness:
    """``GET /healthz`` answered as it arrives, before sessions, routing and dependencies.

    Probes ask it every few seconds and it must answer even when everything else is slow; its answer is
    the one the route above gives (the route stays, for the API document and other methods). The
    middlewares outside this one still add the request id, the security headers and the log line.
    """

    def __init__(self, app: ASGIApp, *, release: str) -> None:
        self.app = app
        self.route: BaseRoute = next(r for r in router.routes if getattr(r, "path", None) == "/healthz")
        body = json.dumps(liveness(release), separators=(",", ":"), ensure_ascii=False).encode()
        self.headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
        self.body = {"type": "http.response.body", "body": body}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/healthz" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route  # as routing would leave it: the request is counted under its template
        await send({"type": "http.response.start", "status": 200, "headers": list(self.headers)})
        await send(self.body)


@router.get(
    "/readyz",
    summary="Readiness: every backing service answers and the process is not draining",
    response_model=ReadinessOut,
    responses={
        200: {"description": "Ready for traffic", "headers": _NO_STORE},
        503: {"description": "Not ready: draining, or a service failed", "model": ReadinessOut, "headers": _NO_STORE},
    },
)
async def readyz(services: ServicesDep) -> JSONResponse:
    readiness = await check_readiness(
        services.probes, timeout=services.settings.ready_timeout, draining=lifecycle.is_draining
    )
    body: dict[str, Any] = {
        "status": "ready" if readiness.ready else "unavailable",
        "release": services.settings.release_id,
        "checks": readiness.checks,
        "breakers": readiness.breakers,  # closed, open (failing fast) or half-open (trying again)
    }
    if readiness.draining:
        body["detail"] = "shutting down"
    elif not readiness.ready:
        body["detail"] = "not ready: " + ", ".join(readiness.failing)
    return JSONResponse(body, status_code=200 if readiness.ready else 503, headers={"Cache-Control": "no-store"})
