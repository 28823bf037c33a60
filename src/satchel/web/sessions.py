"""Server-side sessions (factor VI): the cookie holds a random id, the data lives in Redis.

A session is loaded from Redis only when a route asks for it, saved only when
it changed, and gets a new id whenever the user signs in or out (no fixation).

A visitor nobody needs to remember gets no session at all: the CSRF token of the forms they see
(sign-in, a share's password) is a signed double-submit token instead, bound to a random seed in a
cookie of its own and signed with ``SECRET_KEY``, so reading a share page costs no Redis key.

If the session cannot be saved because Redis is unavailable, a change of identity
(sign-in, sign-out, new password) fails the request with a 503: the user must not
believe they signed out while the old session lives on. Any other change (a CSRF
token, a one-time message) is lost and the response goes out as it was.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from satchel.ports.health import ServiceUnavailable
from satchel.ports.security import SessionStore
from satchel.runtime.logging import get_logger

COOKIE = "satchel_session"
CSRF_COOKIE = "satchel_csrf"  # the seed of a session-less visitor's CSRF token
log = get_logger("satchel.http")


class Session:
    """One browser's session, loaded lazily."""

    def __init__(
        self, store: SessionStore, session_id: str | None, *, csrf_seed: str | None = None, secret: bytes = b""
    ) -> None:
        self._store = store
        self._id = session_id
        self._csrf_seed = csrf_seed or None
        self._secret = secret
        self.new_csrf_seed: str | None = None  # set when this response must give the visitor a seed
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
        """The token this browser's forms carry: the session's, or, with no session, the visitor's signed one."""
        data = await self.data()
        if token := data.get("csrf"):
            return str(token)
        if self._id is None and not self.modified:  # nothing to remember: no session just for this
            if self._csrf_seed is None:
                self._csrf_seed = self.new_csrf_seed = secrets.token_urlsafe(32)
            return self._signed(self._csrf_seed)
        token = secrets.token_urlsafe(32)
        await self.set("csrf", token)
        return token

    async def csrf_ok(self, presented: str | None) -> bool:
        if not presented:
            return False
        if expected := await self.get("csrf"):
            return hmac.compare_digest(str(expected), presented)
        return bool(self._csrf_seed) and hmac.compare_digest(self._signed(self._csrf_seed or ""), presented)

    def _signed(self, seed: str) -> str:
        digest = hmac.new(self._secret, b"csrf:" + seed.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

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

    def __init__(self, app: ASGIApp, *, secure: bool, secret: bytes) -> None:
        self.app = app
        self.secure = secure
        self.secret = secret
        # Over https the seed cookie takes the __Host- prefix: no subdomain can plant a seed of its own.
        self.csrf_cookie = f"__Host-{CSRF_COOKIE}" if secure else CSRF_COOKIE

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        store: SessionStore = scope["app"].state.services.sessions
        cookies = HTTPConnection(scope).cookies
        session = Session(store, cookies.get(COOKIE), csrf_seed=cookies.get(self.csrf_cookie), secret=self.secret)
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
                secure = "; Secure" if self.secure else ""
                if new_id:
                    max_age = 14 * 24 * 3600
                    cookie = f"{COOKIE}={new_id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
                    MutableHeaders(scope=message).append("set-cookie", cookie)
                if session.new_csrf_seed:
                    cookie = f"{self.csrf_cookie}={session.new_csrf_seed}; Path=/; HttpOnly; SameSite=Lax{secure}"
                    MutableHeaders(scope=message).append("set-cookie", cookie)
            await send(message)

        await self.app(scope, receive, send_with_cookie)


async def _send_unavailable(scope: Scope, receive: Receive, send: Send, exc: ServiceUnavailable) -> None:
    """The same 503 problem the error handlers give, sent from here, after they have run."""
    from satchel.web.problems import unavailable  # the error handlers depend on this module, not the reverse

    await unavailable(exc)(scope, receive, send)


def session_of(connection: HTTPConnection) -> Session:
    session: Session = connection.state.session
    return session
