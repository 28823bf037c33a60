"""What anyone with an upload link sees: its page, its password prompt, and the upload itself.

Uploaders have no account. A page view writes nothing (no session, no per-visitor key); a session begins
only once a password was given in the browser, as for password shares. Scripts send the password in
``X-Request-Password`` instead: ``curl -T FILE -H 'X-Request-Password: …' https://…/r/TOKEN/files/NAME``.
Resumable uploads through the link (tus) are in ``public_request_uploads.py``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Header, Request, status
from fastapi.responses import RedirectResponse, Response

from satchel.domain.clock import utcnow
from satchel.domain.errors import TooManyAttempts
from satchel.services.requests import Credentials
from satchel.web.api.files import FILE_BODY, PartialPutRefused
from satchel.web.api.schemas import FileOut
from satchel.web.bodies import body_stream, declared_size
from satchel.web.openapi import problems
from satchel.web.params import FileName
from satchel.web.security import CSRF_HEADER, CsrfChecked, ServicesDep, SessionDep, client_of
from satchel.web.sessions import Session
from satchel.web.templating import render

router = APIRouter(prefix="/r", tags=["public"], responses=problems(404, 410, 503))
PASSWORD_HEADER = "X-Request-Password"  # noqa: S105 - for curl and scripts; browsers unlock with the form


async def credentials_of(request: Request, session: Session) -> Credentials:
    """What this caller shows a link's password: the header (scripts), or the links its browser session unlocked
    and whether this request carries that session's CSRF token (the session is ambient authority: a page of
    another site must not upload with it)."""
    if password := request.headers.get(PASSWORD_HEADER):
        return Credentials(password=password)
    unlocked = await session.get("unlocked_requests") or []
    if not unlocked:
        return Credentials()
    return Credentials(unlocked=frozenset(unlocked), from_page=await session.csrf_ok(request.headers.get(CSRF_HEADER)))


async def _request_password(
    password: Annotated[
        str | None,
        Header(
            alias=PASSWORD_HEADER,
            description="the link's password, for scripts; browsers unlock the link on its page instead",
        ),
    ] = None,
) -> None:
    """Declares the header for the document; ``credentials_of`` reads it."""


REQUEST_PASSWORD = [Depends(_request_password)]


@router.get("/{token}", include_in_schema=False)
async def request_page(token: str, request: Request, services: ServicesDep, session: SessionDep) -> Response:
    opened = await services.requests.open(token)
    unlocked = not opened.request.has_password or opened.request.id in (await session.get("unlocked_requests") or [])
    template = "public_request.html" if unlocked else "public_request_password.html"
    chunk = services.settings.upload_chunk_bytes
    return await render(request, template, opened=opened, token=token, now=utcnow(), upload_chunk=chunk)


@router.post("/{token}/unlock", include_in_schema=False, dependencies=[CsrfChecked])
async def unlock(
    token: str, request: Request, services: ServicesDep, session: SessionDep, password: Annotated[str, Form()]
) -> Response:
    opened = await services.requests.open(token)
    try:
        correct = not opened.request.has_password or await services.requests.unlock(
            opened.request, password, client=client_of(request)
        )
    except TooManyAttempts as exc:
        response = await render(request, "public_request_password.html", 429, opened=opened, error=exc.message)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if correct:
        unlocked = await session.get("unlocked_requests") or []
        await session.set("unlocked_requests", [*unlocked[-49:], opened.request.id])
        return RedirectResponse(f"/r/{token}", status_code=303)
    error = "That password is not right."
    return await render(request, "public_request_password.html", 401, opened=opened, error=error)


@router.put(
    "/{token}/files/{file_id:path}",
    status_code=status.HTTP_201_CREATED,
    summary="Upload one file through an upload link, as the raw request body",
    dependencies=REQUEST_PASSWORD,
    responses=problems(
        (401, f"The link has a password: send it as `{PASSWORD_HEADER}`"),
        (403, f"A browser that unlocked the link must send its page's `{CSRF_HEADER}`"),
        (413, "Larger than the link, the server or its owner's quota still takes; nothing was kept"),
        422,
        429,
    ),
    openapi_extra={"requestBody": FILE_BODY},
)
async def upload(token: str, name: FileName, request: Request, services: ServicesDep, session: SessionDep) -> FileOut:
    """`curl -T report.pdf https://…/r/TOKEN/files/report.pdf`: the body streams to the link owner's storage.
    No account needed; the link's limits and its owner's quota are checked before and while it streams.
    To resume after a dropped connection, use the link's tus endpoint (`/r/TOKEN/uploads/`) instead."""
    if "content-range" in request.headers:
        raise PartialPutRefused()
    file = await services.requests.receive(
        token,
        name,
        body_stream(request, services.settings.body_timeout),
        credentials=await credentials_of(request, session),
        client=client_of(request),
        content_type=request.headers.get("content-type"),
        declared_size=declared_size(request),
    )
    return FileOut.of(file)
