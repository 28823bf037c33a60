"""/api/requests: ask for files by link (upload requests): create, list, inspect, revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from satchel.domain.clock import utcnow
from satchel.web import qr
from satchel.web.api.schemas import Page, RequestIn, RequestOut
from satchel.web.openapi import QR_CODE, SIGNED_IN, problems
from satchel.web.params import Offset, RowId
from satchel.web.security import ApiUser, ServicesDep
from satchel.web.urls import base_url

router = APIRouter(prefix="/api/requests", tags=["requests"], dependencies=SIGNED_IN, responses=problems(401, 503))
NO_SUCH_REQUEST = problems((404, "No such upload request, or not yours"))


@router.get("", summary="List your upload requests, newest first", responses=problems(422))
async def list_requests(
    request: Request,
    user: ApiUser,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> Page[RequestOut]:
    found, total = await services.requests.list_owned(user, limit=limit, offset=offset)
    base, now = base_url(request), utcnow()
    return Page(items=[RequestOut.of(r, base, now) for r in found], total=total, limit=limit, offset=offset)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Ask for files: a link through which anyone uploads into your account",
    responses=problems(403, 422),
)
async def create_request(body: RequestIn, request: Request, user: ApiUser, services: ServicesDep) -> RequestOut:
    terms = services.requests.terms(body.expires_in_hours, body.max_files, body.max_bytes, body.note)
    created = await services.requests.create(user, terms, password=body.password or None)
    return RequestOut.of(created, base_url(request), utcnow(), files=[])


@router.get("/{request_id}", summary="One of your upload requests, with what came in", responses=NO_SUCH_REQUEST)
async def get_request(request_id: RowId, request: Request, user: ApiUser, services: ServicesDep) -> RequestOut:
    view = await services.requests.owned(user, request_id)
    return RequestOut.of(view.request, base_url(request), utcnow(), files=view.files)


@router.get(
    "/{request_id}/qr",
    summary="The QR code of one of your upload links, as SVG",
    response_class=Response,
    responses=QR_CODE
    | NO_SUCH_REQUEST
    | problems(422, (410, "The upload link no longer takes files: expired, closed or full")),
)
async def request_qr(request_id: RowId, request: Request, user: ApiUser, services: ServicesDep) -> Response:
    return qr.request_qr(base_url(request), await services.requests.open_link(user, request_id))


@router.delete(
    "/{request_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Close an upload request: nobody can upload through it any more",
    responses=problems(403) | NO_SUCH_REQUEST,
)
async def revoke_request(request_id: RowId, user: ApiUser, services: ServicesDep) -> Response:
    await services.requests.revoke(user, request_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
