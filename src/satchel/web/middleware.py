"""Request ids, the one access-log line per request (factor XI), and the request metrics."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from satchel.runtime.logging import get_logger, log_request
from satchel.runtime.metrics.instruments import HttpRecorder
from satchel.web.problems import CRASHED, client_left, problem

log = get_logger("satchel.http")
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# A share's or upload link's token is its key, an invitation link's opens an account: never write one to a log.
_LINK_TOKEN = re.compile(r"^/(s|r|invite)/[^/]+")
_PREVIEW_PASS = re.compile(r"^/previews/[^/]+")  # nor a preview pass, a key to one file for an hour
CLIENT_CLOSED = 499  # the access-log status of a request whose client left before its answer


def loggable_path(path: str) -> str:
    if path.startswith("/previews/"):
        return _PREVIEW_PASS.sub("/previews/{pass}", path)
    if path.startswith(("/s/", "/r/", "/invite/")):
        return _LINK_TOKEN.sub(lambda link: f"/{link.group(1)}/{{token}}", path)
    return path


class RequestContext:
    """Takes ``X-Request-ID`` (or makes one), binds it to every log line, returns it.

    A client that goes away mid-request is logged as ``http.client_disconnected`` and status 499,
    never as a server error. Anything else that reaches this far (a failure in the middleware
    itself) is logged here with the request id and answered 500 once, not passed on to the server.
    With ``SATCHEL_INSTANCE`` set, every answer names the host that gave it (``Satchel-Instance``), so a
    request can be followed to one machine of many; unset, nothing about the host is sent.

    The same place counts and times the request by its route template (routing leaves the matched
    route in the scope), so metrics cost no middleware layer of their own.
    """

    def __init__(self, app: ASGIApp, instance: str | None = None) -> None:
        self.app = app
        self.instance = instance
        self.metrics = HttpRecorder()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        began = time.perf_counter()
        status: int | None = None  # until the response starts
        added = [(b"x-request-id", request_id.encode())]
        if self.instance:
            added.append((b"satchel-instance", self.instance.encode()))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                kept = [h for h in message.get("headers", ()) if h[0].lower() not in _OURS]
                message["headers"] = kept + added
            await send(message)

        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if client_left(exc):
                status = CLIENT_CLOSED
                log.info("http.client_disconnected", method=scope["method"], path=loggable_path(scope["path"]))
            else:
                log.error("http.unhandled_error", exc_info=exc)
                if status is None:
                    await problem(500, CRASHED)(scope, receive, send_with_id)
        finally:
            took = time.perf_counter() - began
            answered = status or 500  # an app that never answered: the server answers 500
            self.metrics.record(scope, answered, took)
            log_request(
                "satchel.http",
                "http.request",
                method=scope["method"],
                path=loggable_path(scope["path"]),
                status=answered,
                duration_ms=round(took * 1000, 2),
                client=(scope.get("client") or ("", 0))[0],
            )
            structlog.contextvars.reset_contextvars(**bound)


_OURS = frozenset({b"x-request-id", b"satchel-instance"})  # headers this middleware answers with, whoever set them


def _request_id(scope: Scope) -> str:
    """The client's ``X-Request-ID`` when it is a usable one, else a new one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            incoming = value.decode("latin-1")
            return incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
    return uuid.uuid4().hex
