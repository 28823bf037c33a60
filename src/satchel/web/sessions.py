"""Server-side sessions (factor VI): the cookie holds a random id, the data lives in Redis.

A session is loaded from Redis only when a route asks for it, saved only when
it changed, and gets a new id whenever the user signs in or out (no fixation).

If the session cannot be saved because Redis is unavailable, a change of identity
(sign-in, sign-out, new password) fails the request with a 503: the user must not
believe they signed out while the old session lives on. Any other change (a CSRF
token, a one-time message) is lost and the response goes out as it was.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from satchel.ports import ServiceUnavailable, SessionStore
from satchel.runtime.logging import get_logger

COOKIE = "satchel_session"
log = get_logger("satchel.http")


class Session:
    """One browser's session, loaded lazily."""

    def __init__(self, store: SessionStore, session_id: str | None) -> None:
        self._store = store
        self._id = session_id
        self._old_id: str | None = None
        self._data: dict[str, Any] | None = None
        self.modified = False
        self.cleared = False
        self.rotated = False  # the identity changed: saving is not optional

    async def data(self) -> dict[str, Any]:
        if self._data is None:
            loaded = await self._store.load(self._id) if self._id else None
            if loaded is None:
                self._id = None  # unknown or expired: a fresh one is issued when saved
            self._data = loaded or {}
        return self._data

    async def get(self, key: str, default: Any = None) -> Any:
        return (await self.data()).get(key, default)

    async def set(self, key: str, value: Any) -> None:
        (await self.data())[key] = value
        self.modified = True

    async def csrf_token(self) -> str:
        token = await self.get("csrf")
        if not token:
            token = secrets.token_urlsafe(32)
            await self.set("csrf", token)
        return str(token)

    async def csrf_ok(self, presented: str | None) -> bool:
        expected = await self.get("csrf")
        return bool(expected and presented and hmac.compare_digest(str(expected), presented))

    async def rotate(self, **fresh: Any) -> None:
        """Start over under a new id (on sign-in and sign-out), keeping only ``fresh`` data."""
        await self.data()
        self._old_id = self._id
        self._id = None
        self._data = {"csrf": secrets.token_urlsafe(32), **fresh}
        self.modified = True
        self.rotated = True

    async def commit(self) -> str | None:
        """Persist changes; returns the id to set in the cookie when it changed."""
        if self._old_id:
            await self._store.delete(self._old_id)
        if not self.modified or self._data is None:
            return None
        new = self._id is None
        if new:
            self._id = secrets.token_urlsafe(32)
        assert self._id is not None
        await self._store.save(self._id, self._data)
        return self._id if new else None


class SessionMiddleware:
    """Gives every HTTP request a lazy ``Session`` and writes it back before the response starts."""

    def __init__(self, app: ASGIApp, *, secure: bool) -> None:
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        store: SessionStore = scope["app"].state.services.sessions
        session = Session(store, HTTPConnection(scope).cookies.get(COOKIE))
        scope.setdefault("state", {})["session"] = session
        replaced = False

        async def send_with_cookie(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return  # the app's own response was replaced by a 503: the rest of it goes nowhere
            if message["type"] == "http.response.start":
                try:
                    new_id = await session.commit()
                except ServiceUnavailable as exc:
                    log.warning("session.not_saved", service=exc.service, reason=exc.reason, rotated=session.rotated)
                    if session.rotated:
                        replaced = True
                        await _send_unavailable(scope, receive, send, exc)
                        return
                    new_id = None
                if new_id:
                    headers = MutableHeaders(scope=message)
                    secure = "; Secure" if self.secure else ""
                    max_age = 14 * 24 * 3600
                    cookie = f"{COOKIE}={new_id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
                    headers.append("set-cookie", cookie)
            await send(message)

        await self.app(scope, receive, send_with_cookie)


async def _send_unavailable(scope: Scope, receive: Receive, send: Send, exc: ServiceUnavailable) -> None:
    """The same 503 problem the error handlers give, sent from here, after they have run."""
    from satchel.web.problems import unavailable  # the error handlers depend on this module, not the reverse

    await unavailable(exc)(scope, receive, send)


def session_of(connection: HTTPConnection) -> Session:
    session: Session = connection.state.session
    return session
