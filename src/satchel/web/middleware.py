"""Request ids and the one access-log line per request (factor XI)."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from satchel.runtime.logging import get_logger

log = get_logger("satchel.http")
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_SHARE_TOKEN = re.compile(r"^/s/[^/]+")  # a share link's token is its key: never write it to a log


def loggable_path(path: str) -> str:
    return _SHARE_TOKEN.sub("/s/{token}", path)


class RequestContext:
    """Takes ``X-Request-ID`` (or makes one), binds it to every log line, returns it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                log.info(
                    "http.request",
                    method=scope["method"],
                    path=loggable_path(scope["path"]),
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                    client=(scope.get("client") or ("", 0))[0],
                )
