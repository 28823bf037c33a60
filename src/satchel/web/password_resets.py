"""The answer to "Forgot your password?": ``/password-reset`` asks for an address, ``/password-reset/<token>``
sets a new password.

Nothing here needs a session until the new password is set: the forms' CSRF token is the visitor's signed one.
The link's page and form answer as every one-time link's do (``web/link_forms.py``).
The answer to asking is the same page, with the same status, whatever the address (``PasswordResets.request``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from satchel.domain.errors import DomainError, TooManyAttempts
from satchel.domain.password_resets import ASKED
from satchel.web.link_forms import LinkForm, Token
from satchel.web.security import CsrfChecked, ServicesDep, SessionDep, client_of
from satchel.web.templating import render

router = APIRouter(prefix="/password-reset", include_in_schema=False)
FORM = LinkForm(
    "password_reset.html",
    "opened",
    "Your new password is set. Other sessions are signed out and your API tokens are revoked.",
)


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
    return await FORM.page(request, token, services.password_resets.opened)


@router.post("/{token}", dependencies=[CsrfChecked])
async def reset(
    request: Request, services: ServicesDep, session: SessionDep, token: Token, password: Annotated[str, Form()]
) -> Response:
    done = services.password_resets.reset(token, password, client=client_of(request))
    return await FORM.submit(request, session, token, done, services.password_resets.opened)
