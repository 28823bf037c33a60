"""``/healthz`` (alive) and ``/readyz`` (ready for traffic) for orchestrators (factor IX)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from satchel import __version__
from satchel.runtime import lifecycle
from satchel.services.readiness import check_readiness
from satchel.web.api.schemas import LivenessOut, ReadinessOut
from satchel.web.security import ServicesDep

router = APIRouter(tags=["operations"])
_NO_STORE = {"Cache-Control": {"description": "`no-store`", "required": True, "schema": {"type": "string"}}}


@router.get("/healthz", summary="Liveness: the process is up", response_model=LivenessOut)
async def healthz(services: ServicesDep) -> dict[str, Any]:
    return {"status": "ok", "release": services.settings.release_id, "version": __version__}


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
