"""/api/me and /api/tokens: who you are, and your personal API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from satchel.web.api.schemas import NewTokenOut, PasswordChangeIn, TokenIn, TokenOut, UserOut
from satchel.web.openapi import SIGNED_IN, problems
from satchel.web.params import RowId
from satchel.web.security import ApiUser, ServicesDep, SessionDep, start_session

router = APIRouter(prefix="/api", tags=["account"], dependencies=SIGNED_IN, responses=problems(401, 503))


@router.get("/me", summary="The account the request is authenticated as")
async def me(user: ApiUser) -> UserOut:
    return UserOut.of(user)


@router.post(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change your password",
    responses=problems((401, "No credentials, or the current password is not right"), 403, 422),
    description="Signs out every other session and revokes every API token of the account, "
    "including the one sending this request; a browser session that sends it stays signed in.",
)
async def change_password(
    body: PasswordChangeIn, request: Request, user: ApiUser, services: ServicesDep, session: SessionDep
) -> Response:
    changed = await services.accounts.change_password(user, body.current_password, body.new_password)
    if not getattr(request.state, "via_token", False):
        await start_session(session, changed, keep_csrf=True)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/tokens", summary="Your API tokens (never their secrets)")
async def list_tokens(user: ApiUser, services: ServicesDep) -> list[TokenOut]:
    return [TokenOut.of(t) for t in await services.accounts.tokens(user)]


@router.post(
    "/tokens",
    status_code=status.HTTP_201_CREATED,
    summary="Create an API token, shown once",
    responses=problems(403, 422),
)
async def create_token(body: TokenIn, user: ApiUser, services: ServicesDep) -> NewTokenOut:
    new = await services.accounts.create_token(user, body.name)
    return NewTokenOut(**TokenOut.of(new.token).model_dump(), token=new.secret)


@router.delete(
    "/tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke an API token",
    responses=problems(403, (404, "No such token, or not yours"), 422),
)
async def revoke_token(token_id: RowId, user: ApiUser, services: ServicesDep) -> Response:
    await services.accounts.revoke_token(user, token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
