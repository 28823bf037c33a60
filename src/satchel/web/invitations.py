"""What an invited person sees: ``/invite/<token>``, where they choose a password and their account opens.

It answers as every one-time link's form does (``web/link_forms.py``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from satchel.web.link_forms import LinkForm, Token
from satchel.web.security import CsrfChecked, ServicesDep, SessionDep, client_of

router = APIRouter(prefix="/invite", include_in_schema=False)
FORM = LinkForm(
    "invitation.html", "invitation", "Welcome to Satchel: your account is open. Drop files here to upload them."
)


@router.get("/{token}")
async def invitation_page(request: Request, services: ServicesDep, token: Token) -> Response:
    return await FORM.page(request, token, services.invitations.opened)


@router.post("/{token}", dependencies=[CsrfChecked])
async def accept(
    request: Request, services: ServicesDep, session: SessionDep, token: Token, password: Annotated[str, Form()]
) -> Response:
    accepted = services.invitations.accept(token, password, client=client_of(request))
    return await FORM.submit(request, session, token, accepted, services.invitations.opened)
