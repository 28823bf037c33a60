"""What anyone with an upload link sees: its page, its password prompt, and the upload itself.

Uploaders have no account. A page view writes nothing (no session, no per-visitor key); a session begins
only once a password was given in the browser, as for password shares. Scripts send the password in
``X-Request-Password`` instead: ``curl -T FILE -H 'X-Request-Password: …' https://…/r/TOKEN/files/NAME``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import RedirectResponse, Response

from satchel.domain.clock import utcnow
from satchel.domain.errors import Forbidden, TooManyAttempts
from satchel.domain.requests import RequestPasswordRequired
from satchel.services.requests import OpenRequest
from satchel.web.api.files import FILE_BODY, PartialPutRefused
from satchel.web.api.schemas import FileOut
from satchel.web.bodies import body_stream, declared_size
from satchel.web.openapi import problems
from satchel.web.params import FileName
from satchel.web.security import CSRF_HEADER, CsrfChecked, ServicesDep, SessionDep, client_of
from satchel.web.templating import render

router = APIRouter(prefix="/r", tags=["public"], responses=problems(404, 410, 503))
PASSWORD_HEADER = "X-Request-Password"  # noqa: S105 - for curl and scripts; browsers unlock with the form


async def _unlocked(request: Request, services: ServicesDep, session: SessionDep, opened: OpenRequest) -> bool:
    """Whether this caller may upload: no password, the password in the header, or a session that gave it."""
    if not opened.request.has_password:
        return True
    if password := request.headers.get(PASSWORD_HEADER):
        return await services.requests.unlock(opened.request, password, client=client_of(request))
    if opened.request.id in (await session.get("unlocked_requests") or []):
        # The session is ambient authority: a page of another site must not upload with it.
        if not await session.csrf_ok(request.headers.get(CSRF_HEADER)):
            raise Forbidden(f"Missing or wrong {CSRF_HEADER} header.")
        return True
    return False


@router.get("/{token}", include_in_schema=False)
async def request_page(token: str, request: Request, services: ServicesDep, session: SessionDep) -> Response:
    opened = await services.requests.open(token)
    unlocked = not opened.request.has_password or opened.request.id in (await session.get("unlocked_requests") or [])
    template = "public_request.html" if unlocked else "public_request_password.html"
    return await render(request, template, opened=opened, token=token, now=utcnow())


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
    responses=problems(
        (401, f"The link has a password: send it as `{PASSWORD_HEADER}`"),
        (413, "Larger than the link, the server or its owner's quota still takes; nothing was kept"),
        422,
        429,
    ),
    openapi_extra={"requestBody": FILE_BODY},
)
async def upload(token: str, name: FileName, request: Request, services: ServicesDep, session: SessionDep) -> FileOut:
    """`curl -T report.pdf https://…/r/TOKEN/files/report.pdf`: the body streams to the link owner's storage.
    No account needed; the link's limits and its owner's quota are checked before and while it streams."""
    opened = await services.requests.open(token)
    if not await _unlocked(request, services, session, opened):
        raise RequestPasswordRequired(f"This upload link needs its password: send {PASSWORD_HEADER}.")
    if "content-range" in request.headers:
        raise PartialPutRefused()
    file = await services.requests.receive(
        opened,
        name,
        body_stream(request, services.settings.body_timeout),
        unlocked=True,
        client=client_of(request),
        content_type=request.headers.get("content-type"),
        declared_size=declared_size(request),
    )
    return FileOut.of(file)
