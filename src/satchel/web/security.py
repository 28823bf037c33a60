"""Who is asking, and may they: authentication, CSRF and security headers for every route."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from satchel.bootstrap import Services
from satchel.domain.accounts import User
from satchel.domain.errors import DomainError, Forbidden, NotFound, Unauthenticated
from satchel.web.sessions import Session, session_of

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
CSRF_HEADER = "X-CSRF-Token"

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def page_policy(preview_origin: str | None) -> str:
    """The pages' policy; with previews on an origin of their own, pages may show images, media and frames
    from it (and from nowhere else)."""
    if preview_origin is None:
        return PAGE_POLICY
    sources = f"img-src 'self' data: {preview_origin}; media-src 'self' {preview_origin}; frame-src {preview_origin}"
    return PAGE_POLICY.replace("img-src 'self' data:", sources)


# Downloads are never rendered as a page of ours: sandboxed, no scripts, nothing loaded.
DOWNLOAD_POLICY = "sandbox; default-src 'none'; frame-ancestors 'none'"


class SecurityHeaders:
    """Headers every response carries; a route may set a stricter policy of its own."""

    def __init__(self, app: ASGIApp, *, https: bool, preview_origin: str | None = None) -> None:
        self.app = app
        self.headers = {
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",  # share links carry their token in the URL
            "Cross-Origin-Opener-Policy": "same-origin",
            "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
        }
        if https:
            self.headers["Strict-Transport-Security"] = "max-age=31536000"
        # As the server sends them, encoded once: a route's own value of any of them wins.
        defaults = {**self.headers, "Content-Security-Policy": page_policy(preview_origin)}
        self.raw = [(name.lower().encode(), value.encode()) for name, value in defaults.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers += [header for header in self.raw if header[0] not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class LoginRequired(DomainError):
    """Sign in to continue."""

    status = 401

    def __init__(self, next_url: str) -> None:
        super().__init__()
        self.location = f"/login?next={quote(next_url, safe='/')}"


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


# Dependencies that do no I/O are coroutines: FastAPI runs a plain function in a thread, which costs a
# thread hand-off each time, on every request.
async def _services(request: Request) -> Services:
    return services_of(request)


ServicesDep = Annotated[Services, Depends(_services)]


async def get_session(request: Request) -> Session:
    return session_of(request)


SessionDep = Annotated[Session, Depends(get_session)]


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def optional_user(request: Request, services: ServicesDep, session: SessionDep) -> User | None:
    """The caller: by bearer token (API, curl) or by session cookie (browser)."""
    if hasattr(request.state, "user"):
        user: User | None = request.state.user
        return user
    user = None
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        user = await services.accounts.authenticate_token(credentials.strip())
        if user is None:
            raise Unauthenticated("That API token is not valid.")
        request.state.via_token = True
    elif user_id := await session.get("user_id"):
        user = await services.accounts.active_user(int(user_id), stamp=await session.get("stamp"))
    request.state.user = user
    return user


async def start_session(session: Session, user: User, *, keep_csrf: bool = False) -> None:
    """Sign ``user`` in under a new session id (no fixation), stamped with the password it was opened with.

    ``keep_csrf`` keeps the page that asked (an API call from the browser) able to send its next request.
    """
    kept = {"csrf": await session.csrf_token()} if keep_csrf else {}
    await session.rotate(user_id=user.id, stamp=user.session_stamp, **kept)


async def api_user(request: Request, session: SessionDep, user: Annotated[User | None, Depends(optional_user)]) -> User:
    """An authenticated caller of the JSON API; browsers must also prove the request is theirs (CSRF)."""
    if user is None:
        raise Unauthenticated("Sign in, or send an API token as 'Authorization: Bearer …'.")
    needs_csrf = request.method not in SAFE_METHODS and not getattr(request.state, "via_token", False)
    if needs_csrf and not await session.csrf_ok(request.headers.get(CSRF_HEADER)):
        raise Forbidden(f"Missing or wrong {CSRF_HEADER} header.")
    return user


async def page_user(request: Request, user: Annotated[User | None, Depends(optional_user)]) -> User:
    """An authenticated browser user; anyone else is sent to the sign-in page."""
    if user is None:
        raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return user


async def picture_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    """The signed-in owner of a picture a page of theirs shows (a link's QR code); anyone else is told there is
    nothing there, as a picture has no sign-in page to send them to."""
    if user is None:
        raise NotFound("There is nothing here.")
    return user


async def api_admin(user: Annotated[User, Depends(api_user)]) -> User:
    """An administrator calling the JSON API (``/api/admin/…``); the use cases check it again."""
    user.ensure_admin()
    return user


async def page_admin(user: Annotated[User, Depends(page_user)]) -> User:
    """An administrator in the browser (``/admin/…``); anyone else signed in gets 403."""
    user.ensure_admin()
    return user


ApiUser = Annotated[User, Depends(api_user)]
PageUser = Annotated[User, Depends(page_user)]
ApiAdmin = Annotated[User, Depends(api_admin)]
PageAdmin = Annotated[User, Depends(page_admin)]
OptionalUser = Annotated[User | None, Depends(optional_user)]
PictureUser = Annotated[User, Depends(picture_user)]


async def check_form_csrf(request: Request, session: SessionDep) -> None:
    """Every state-changing form carries the session's CSRF token."""
    form = await request.form()
    token = form.get("csrf_token")
    if not await session.csrf_ok(token if isinstance(token, str) else None):
        raise Forbidden("This form has expired. Go back, reload the page and try again.")


CsrfChecked = Depends(check_form_csrf)
