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
from starlette.requests import ClientDisconnect
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from satchel.adapters.resilience import RETRY_AFTER
from satchel.domain.errors import DomainError, TooManyAttempts
from satchel.ports.health import ServiceUnavailable
from satchel.runtime.logging import get_logger
from satchel.web.security import LoginRequired

log = get_logger("satchel.http")
PROBLEM_JSON = "application/problem+json"


# Statuses some protocols add to HTTP's own: tus's checksum mismatch, and a client that left mid-request.
EXTRA_PHRASES = {460: "Checksum Mismatch", 499: "Client Closed Request"}


def phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return EXTRA_PHRASES.get(status, "Error")


def problem(status: int, detail: str | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": phrase(status), "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


UNAVAILABLE_HEADERS = {"Retry-After": str(RETRY_AFTER), "Cache-Control": "no-store"}


def unavailable_detail(exc: ServiceUnavailable) -> str:
    return f"A backing service ({exc.service}) is unavailable; try again shortly."


def unavailable(exc: ServiceUnavailable) -> JSONResponse:
    """The 503 problem of an outage, for a place that cannot go through the error handlers."""
    response = problem(503, unavailable_detail(exc))
    response.headers.update(UNAVAILABLE_HEADERS)
    return response


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

        title = phrase(status)
        try:
            response = await render(request, "error.html", status, status=status, title=title, detail=detail)
        except Exception as exc:  # the page needs the session store; if that is what failed, JSON will do
            log.warning("http.error_page_failed", error=type(exc).__name__)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """Every method the request's path answers to; Starlette's 405 names only those of the first route it tried."""
    routes = request.app.router.routes
    # A fresh scope: the request's own carries what routing already decided for its method.
    scope = {"type": "http", "path": request.scope["path"], "root_path": request.scope.get("root_path", "")}
    return ", ".join(m for m in METHODS if any(r.matches({**scope, "method": m})[0] is Match.FULL for r in routes))


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
        detail = exc.detail if exc.detail != phrase(exc.status_code) else None
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        return await respond(request, exc.status_code, detail, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        if wants_page(request):
            return await respond(request, 422, "; ".join(e["msg"] for e in errors))
        return problem(422, "The request is not valid.", errors=errors)

    @app.exception_handler(ServiceUnavailable)
    async def service_down(request: Request, exc: ServiceUnavailable) -> Response:
        # An outage is the service's, not the request's: no traceback, and the client may come back.
        log.warning("http.service_unavailable", service=exc.service, reason=exc.reason)
        return await respond(request, 503, unavailable_detail(exc), UNAVAILABLE_HEADERS)

    # Added before create_app adds any other middleware, so it sits innermost: inside RequestContext
    # (the request id is bound to its log line), the session and the security headers (its answer has them).
    app.add_middleware(UnexpectedErrors)


CRASHED = "Something went wrong on our side. It has been logged."


def client_left(exc: BaseException) -> bool:
    """Whether ``exc`` only says the client went away mid-request (Starlette's ``ClientDisconnect``)."""
    if isinstance(exc, BaseExceptionGroup):  # raised inside a task group
        return all(client_left(inner) for inner in exc.exceptions)
    return isinstance(exc, ClientDisconnect)


class UnexpectedErrors:
    """The last resort for an exception no handler knows: logged once with its request id, answered 500 once.

    Starlette's own last resort runs outside every middleware, so its log line had no request id, its
    answer no ``X-Request-ID``, and the exception went on to the server to be logged a second time.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if client_left(exc):
                raise  # not our error, and nobody to answer: RequestContext records it as a disconnect
            log.error("http.unhandled_error", exc_info=exc)
            if started:
                # Half an answer is out. Returning without finishing it makes the server cut the
                # connection, so the client cannot take a truncated body for a whole one.
                return
            response = await respond(Request(scope, receive), 500, CRASHED)
            await response(scope, receive, send)
