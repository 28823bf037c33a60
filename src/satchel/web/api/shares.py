"""/api/shares: create, list, inspect and revoke share links."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from satchel.domain.clock import utcnow
from satchel.web import qr
from satchel.web.api.schemas import Page, ShareIn, ShareOut
from satchel.web.openapi import QR_CODE, SIGNED_IN, problems
from satchel.web.params import Offset, RowId
from satchel.web.security import ApiUser, ServicesDep, client_of
from satchel.web.urls import base_url

router = APIRouter(prefix="/api/shares", tags=["shares"], dependencies=SIGNED_IN, responses=problems(401, 503))
NO_SUCH_SHARE = problems((404, "No such share, or not yours"))


@router.get("", summary="List your shares, newest first, with their download counts", responses=problems(422))
async def list_shares(
    request: Request,
    user: ApiUser,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> Page[ShareOut]:
    views, total = await services.sharing.list_owned(user, limit=limit, offset=offset)
    base, now = base_url(request), utcnow()
    return Page(items=[ShareOut.of(v, base, now) for v in views], total=total, limit=limit, offset=offset)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Share one or several of your files",
    responses=problems(403, (404, "One of the files does not exist, or is not yours"), 422),
)
async def create_share(body: ShareIn, request: Request, user: ApiUser, services: ServicesDep) -> ShareOut:
    terms = services.sharing.terms(
        body.expires_in_hours,
        body.max_downloads,
        body.note,
        delete_files_when_done=body.delete_files_when_done,
        notify=body.notify,
        allow_previews=body.allow_previews,
        title=body.title,
    )
    view = await services.sharing.create(
        user, body.file_ids, terms, password=body.password or None, client=client_of(request)
    )
    return ShareOut.of(view, base_url(request), utcnow())


@router.get("/{share_id}", summary="One of your shares", responses=NO_SUCH_SHARE | problems(422))
async def get_share(share_id: RowId, request: Request, user: ApiUser, services: ServicesDep) -> ShareOut:
    return ShareOut.of(await services.sharing.owned(user, share_id), base_url(request), utcnow())


@router.get(
    "/{share_id}/qr",
    summary="The QR code of one of your links, as SVG",
    response_class=Response,
    responses=QR_CODE | NO_SUCH_SHARE | problems(422, (410, "The link no longer opens: expired, revoked or used up")),
)
async def share_qr(share_id: RowId, request: Request, user: ApiUser, services: ServicesDep) -> Response:
    return qr.share_qr(base_url(request), await services.sharing.open_link(user, share_id))


@router.delete(
    "/{share_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke a share",
    responses=problems(403) | NO_SUCH_SHARE | problems(422),
)
async def revoke_share(share_id: RowId, request: Request, user: ApiUser, services: ServicesDep) -> Response:
    await services.sharing.revoke(user, share_id, client=client_of(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
