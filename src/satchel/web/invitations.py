"""What an invited person sees: ``/invite/<token>``, where they choose a password and their account opens.

Nothing here needs a session until the account exists: the form's CSRF token is the visitor's signed one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from satchel.domain.errors import DomainError
from satchel.web.security import CsrfChecked, ServicesDep, SessionDep, client_of, start_session
from satchel.web.templating import flash, render

router = APIRouter(prefix="/invite", include_in_schema=False)
Token = Annotated[str, Path(max_length=100)]


@router.get("/{token}")
async def invitation_page(request: Request, services: ServicesDep, token: Token) -> Response:
    try:
        invitation = await services.invitations.opened(token)
    except DomainError as exc:
        return await render(request, "invitation.html", exc.status, problem=exc.message)
    return await render(request, "invitation.html", invitation=invitation, token=token)


@router.post("/{token}", dependencies=[CsrfChecked])
async def accept(
    request: Request, services: ServicesDep, session: SessionDep, token: Token, password: Annotated[str, Form()]
) -> Response:
    try:
        user = await services.invitations.accept(token, password, client=client_of(request))
    except DomainError as exc:
        try:
            invitation = await services.invitations.opened(token)
        except DomainError as gone:  # the link itself no longer works: say that, not what was wrong with the form
            return await render(request, "invitation.html", gone.status, problem=gone.message)
        return await render(
            request, "invitation.html", exc.status, invitation=invitation, token=token, error=exc.message
        )
    await start_session(session, user)
    await flash(request, "Welcome to Satchel: your account is open. Drop files here to upload them.")
    return RedirectResponse("/files", status_code=303)
