"""Every error a client sees is an RFC 9457 problem+json body, never a traceback."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from satchel.ports import ServiceUnavailable
from satchel.runtime.logging import get_logger

log = get_logger("satchel.http")
PROBLEM_JSON = "application/problem+json"


def problem(status: int, detail: str | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def install(app: FastAPI) -> None:
    """Turn every kind of failure into a problem response, in one place."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = problem(exc.status_code, exc.detail if exc.detail != HTTPStatus(exc.status_code).phrase else None)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        return problem(422, "The request is not valid.", errors=errors)

    @app.exception_handler(ServiceUnavailable)
    async def service_down(_: Request, exc: ServiceUnavailable) -> JSONResponse:
        log.warning("http.service_unavailable", service=exc.service, reason=exc.reason)
        response = problem(503, f"A backing service ({exc.service}) is unavailable; try again shortly.")
        response.headers["Retry-After"] = "5"
        return response

    @app.exception_handler(Exception)
    async def crash(_: Request, exc: Exception) -> JSONResponse:
        log.error("http.unhandled_error", exc_info=exc)
        return problem(500, "Something went wrong on our side. It has been logged.")
