"""The answer to "Forgot your password?": ``/password-reset`` asks for an address, ``/password-reset/<token>``
sets a new password.

Nothing here needs a session until the new password is set: the forms' CSRF token is the visitor's signed one.
The answer to asking is the same page, with the same status, whatever the address (``PasswordResets.request``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from satchel.domain.errors import DomainError, TooManyAttempts
from satchel.domain.password_resets import ASKED
from satchel.web.security import CsrfChecked, ServicesDep, SessionDep, client_of, start_session
from satchel.web.templating import flash, render

router = APIRouter(prefix="/password-reset", include_in_schema=False)
Token = Annotated[str, Path(max_length=100)]


@router.get("")
async def ask_page(request: Request, services: ServicesDep) -> Response:
    return await render(request, "password_forgot.html", minutes=services.settings.password_reset_minutes)


@router.post("", dependencies=[CsrfChecked])
async def ask(request: Request, services: ServicesDep, email: Annotated[str, Form(max_length=1000)]) -> Response:
    minutes = services.settings.password_reset_minutes
    try:
        await services.password_resets.request(email, client=client_of(request))
    except DomainError as exc:
        page = await render(
            request, "password_forgot.html", exc.status, error=exc.message, email=email, minutes=minutes
        )
        if isinstance(exc, TooManyAttempts):
            page.headers["Retry-After"] = str(exc.retry_after)
        return page
    return await render(request, "password_forgot.html", sent=ASKED, minutes=minutes)


@router.get("/{token}")
async def reset_page(request: Request, services: ServicesDep, token: Token) -> Response:
    try:
        opened = await services.password_resets.opened(token)
    except DomainError as exc:
        return await render(request, "password_reset.html", exc.status, problem=exc.message)
    return await render(request, "password_reset.html", opened=opened, token=token)


@router.post("/{token}", dependencies=[CsrfChecked])
async def reset(
    request: Request, services: ServicesDep, session: SessionDep, token: Token, password: Annotated[str, Form()]
) -> Response:
    try:
        user = await services.password_resets.reset(token, password, client=client_of(request))
    except DomainError as exc:
        try:
            opened = await services.password_resets.opened(token)
        except DomainError as gone:  # the link itself no longer works: say that, not what was wrong with the form
            return await render(request, "password_reset.html", gone.status, problem=gone.message)
        return await render(request, "password_reset.html", exc.status, opened=opened, token=token, error=exc.message)
    await start_session(session, user)
    await flash(request, "Your new password is set. Other sessions are signed out and your API tokens are revoked.")
    return RedirectResponse("/files", status_code=303)
