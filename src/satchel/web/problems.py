"""Every error a client sees: RFC 9457 problem+json for the API, a readable page for browsers.

Never a traceback. Domain errors carry their own status and a message meant for
people; anything unexpected is logged with its traceback and answered with a 500.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from satchel.domain.errors import DomainError, TooManyAttempts
from satchel.ports import ServiceUnavailable
from satchel.runtime.logging import get_logger
from satchel.web.security import LoginRequired

log = get_logger("satchel.http")
PROBLEM_JSON = "application/problem+json"


def problem(status: int, detail: str | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def wants_page(request: Request) -> bool:
    """Browsers navigating to pages get HTML; the API, curl and scripts get problem+json."""
    if request.url.path.startswith("/api/") or request.url.path in ("/healthz", "/readyz"):
        return False
    return "text/html" in request.headers.get("accept", "")


async def respond(request: Request, status: int, detail: str | None, headers: dict[str, str] | None = None) -> Response:
    response: Response
    response = problem(status, detail)
    if wants_page(request):
        from satchel.web.templating import render

        title = HTTPStatus(status).phrase
        try:
            response = await render(request, "error.html", status, status=status, title=title, detail=detail)
        except Exception as exc:  # the page needs the session store; if that is what failed, JSON will do
            log.warning("http.error_page_failed", error=type(exc).__name__)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def install(app: FastAPI) -> None:
    """Turn every kind of failure into a response, in one place."""

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if wants_page(request) or request.method == "POST":
            return RedirectResponse(exc.location, status_code=303)
        return problem(401, exc.message)

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyAttempts) else None
        return await respond(request, exc.status, exc.message, headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if exc.detail != HTTPStatus(exc.status_code).phrase else None
        return await respond(request, exc.status_code, detail, dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        if wants_page(request):
            return await respond(request, 422, "; ".join(e["msg"] for e in errors))
        return problem(422, "The request is not valid.", errors=errors)

    @app.exception_handler(ServiceUnavailable)
    async def service_down(request: Request, exc: ServiceUnavailable) -> Response:
        log.warning("http.service_unavailable", service=exc.service, reason=exc.reason)
        detail = f"A backing service ({exc.service}) is unavailable; try again shortly."
        return await respond(request, 503, detail, {"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> Response:
        log.error("http.unhandled_error", exc_info=exc)
        return await respond(request, 500, "Something went wrong on our side. It has been logged.")
