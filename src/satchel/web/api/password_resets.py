"""/api/password-resets: "forgot your password?" for scripts and apps, without an account or a token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status
from pydantic import BaseModel, Field

from satchel.domain.accounts import MAX_PASSWORD, MIN_PASSWORD
from satchel.domain.password_resets import ASKED
from satchel.web.api.schemas import Email, JsonIn
from satchel.web.openapi import problems
from satchel.web.security import ServicesDep, client_of

router = APIRouter(prefix="/api/password-resets", tags=["account"], responses=problems(503))
Token = Annotated[str, Path(max_length=100, description="the token of the link mailed (`…/password-reset/<token>`)")]


class PasswordResetIn(JsonIn):
    email: Email


class PasswordResetAsked(BaseModel):
    detail: str = Field(description="the same words whatever the address: whether an account has it is not said")


class NewPasswordIn(JsonIn):
    password: str = Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Ask for a password reset link by email",
    responses=problems((422, "Not an email address"), (429, "Too many links asked for; wait `Retry-After` seconds")),
    description="Always `202`, whether or not an account has that address: a link goes out by mail only to an "
    "active account's. Limited per address and per client. The link works once, for "
    "`SATCHEL_PASSWORD_RESET_MINUTES`.",
)
async def ask(body: PasswordResetIn, request: Request, services: ServicesDep) -> PasswordResetAsked:
    await services.password_resets.request(body.email, client=client_of(request))
    return PasswordResetAsked(detail=ASKED)


@router.post(
    "/{token}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set a new password through a reset link",
    responses=problems(
        (404, "No such link"), (410, "The link was used, a newer one was, or it expired"), (422, "A weak password")
    ),
    description="Uses the link up, and every other reset link of the account; signs out every session and "
    "revokes every API token of the account, as a change of password does.",
)
async def reset(token: Token, body: NewPasswordIn, request: Request, services: ServicesDep) -> Response:
    await services.password_resets.reset(token, body.password, client=client_of(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
