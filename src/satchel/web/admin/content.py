"""/admin/files and /admin/shares: every user's files and links; delete any file, revoke any link."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from satchel.domain.clock import utcnow
from satchel.ports.persistence import FILE_SORTS
from satchel.services.administration import SHARE_STATUSES
from satchel.web.admin.listing import PAGE_SIZE, back_to, kept_query, offset_of, pages_of
from satchel.web.pages import PageNumber
from satchel.web.params import FileId, RowId
from satchel.web.security import CsrfChecked, PageAdmin, ServicesDep, client_of
from satchel.web.templating import flash, render

router = APIRouter(include_in_schema=False)
SORT_LABELS = {
    "-created": "Newest first",
    "created": "Oldest first",
    "name": "Name, A to Z",
    "-name": "Name, Z to A",
    "-size": "Largest first",
    "size": "Smallest first",
}
assert set(SORT_LABELS) == set(FILE_SORTS), "every sort is offered"


@router.get("/files")
async def files_page(
    request: Request, admin: PageAdmin, services: ServicesDep, sort: str = "-created", q: str = "", page: PageNumber = 1
) -> Response:
    sort = sort if sort in FILE_SORTS else "-created"
    found, total = await services.administration.files(
        admin, sort=sort, search=q, limit=PAGE_SIZE, offset=offset_of(page)
    )
    return await render(
        request,
        "admin/files.html",
        admin_tab="files",
        files=found,
        total=total,
        page=page,
        pages=pages_of(total),
        sort=sort,
        sorts=SORT_LABELS,
        q=q,
        base_query=kept_query(sort=sort if sort != "-created" else None, q=q),
    )


@router.post("/files/{file_id}/delete", dependencies=[CsrfChecked])
async def delete_file(request: Request, admin: PageAdmin, services: ServicesDep, file_id: FileId) -> Response:
    file = await services.administration.delete_file(admin, file_id, client=client_of(request))
    await flash(request, f"Deleted {file.name}.")
    return back_to("/admin/files")


@router.get("/shares")
async def shares_page(
    request: Request, admin: PageAdmin, services: ServicesDep, status: str = "", page: PageNumber = 1
) -> Response:
    status = status if status in SHARE_STATUSES else ""
    found, total = await services.administration.shares(
        admin, status=status or None, limit=PAGE_SIZE, offset=offset_of(page)
    )
    return await render(
        request,
        "admin/shares.html",
        admin_tab="shares",
        shares=found,
        total=total,
        page=page,
        pages=pages_of(total),
        status=status,
        statuses=SHARE_STATUSES,
        now=utcnow(),
        base_query=kept_query(status=status),
    )


@router.post("/shares/{share_id}/revoke", dependencies=[CsrfChecked])
async def revoke_share(request: Request, admin: PageAdmin, services: ServicesDep, share_id: RowId) -> Response:
    await services.administration.revoke_share(admin, share_id, client=client_of(request))
    await flash(request, "Revoked the link: it no longer opens.")
    return back_to("/admin/shares")
