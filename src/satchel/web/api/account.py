"""/api/me and /api/tokens: who you are, and your personal API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from satchel.web.api.schemas import NewTokenOut, PasswordChangeIn, TokenIn, TokenOut, UserOut
from satchel.web.security import ApiUser, ServicesDep

router = APIRouter(prefix="/api", tags=["account"])


@router.get("/me", summary="The account the request is authenticated as")
async def me(user: ApiUser) -> UserOut:
    return UserOut.of(user)


@router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT, summary="Change your password")
async def change_password(body: PasswordChangeIn, user: ApiUser, services: ServicesDep) -> Response:
    await services.accounts.change_password(user, body.current_password, body.new_password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/tokens", summary="Your API tokens (never their secrets)")
async def list_tokens(user: ApiUser, services: ServicesDep) -> list[TokenOut]:
    return [TokenOut.of(t) for t in await services.accounts.tokens(user)]


@router.post("/tokens", status_code=status.HTTP_201_CREATED, summary="Create an API token, shown once")
async def create_token(body: TokenIn, user: ApiUser, services: ServicesDep) -> NewTokenOut:
    new = await services.accounts.create_token(user, body.name)
    return NewTokenOut(**TokenOut.of(new.token).model_dump(), token=new.secret)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Revoke an API token")
async def revoke_token(token_id: int, user: ApiUser, services: ServicesDep) -> Response:
    await services.accounts.revoke_token(user, token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
