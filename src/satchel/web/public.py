"""What anyone with a share link sees: the share page, its password prompt, and the downloads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from satchel.domain.errors import TooManyAttempts
from satchel.domain.sharing import SharePasswordRequired
from satchel.services.sharing import ShareView
from satchel.web.api.schemas import ShareStatusOut
from satchel.web.downloads import requested_span, send_file, send_thumbnail, send_zip
from satchel.web.openapi import SHARE_DOWNLOAD, SHARE_PASSWORD, SHARE_PREVIEW, SHARE_STATUS
from satchel.web.params import FileId
from satchel.web.previews import on_page, send_preview
from satchel.web.security import CsrfChecked, ServicesDep, SessionDep, client_of
from satchel.web.templating import render

# Every public route answers with a Response of its own; the document describes the downloads' answers.
router = APIRouter(
    prefix="/s", tags=["public"], dependencies=SHARE_PASSWORD, responses=SHARE_DOWNLOAD, default_response_class=Response
)
# A link's state as JSON: the page's script asks it after a download, so its count follows without a reload.
status_router = APIRouter(prefix="/s", tags=["public"], dependencies=SHARE_PASSWORD, responses=SHARE_STATUS)
PASSWORD_HEADER = "X-Share-Password"  # noqa: S105 - for curl and scripts; browsers unlock with the form


async def _unlocked(request: Request, services: ServicesDep, session: SessionDep, view: ShareView) -> bool:
    if not view.share.has_password:
        return True
    if view.share.id in (await session.get("unlocked") or []):
        return True
    if password := request.headers.get(PASSWORD_HEADER):
        return await services.sharing.unlock(view, password, client=client_of(request))
    return False


@router.get("/{token}", include_in_schema=False)
async def share_page(
    token: str, request: Request, services: ServicesDep, session: SessionDep, preview: str | None = None
) -> Response:
    view = await services.sharing.open(token)
    if not await _unlocked(request, services, session, view):
        return await render(request, "public_password.html", view=view)
    shown, previewable = await services.previews.on_share_page(view, preview)
    return await render(
        request, "public_share.html", view=view, preview=on_page(services, shown), previewable=previewable
    )


@router.post("/{token}/unlock", include_in_schema=False, dependencies=[CsrfChecked])
async def unlock(
    token: str, request: Request, services: ServicesDep, session: SessionDep, password: Annotated[str, Form()]
) -> Response:
    view = await services.sharing.open(token)
    try:
        correct = not view.share.has_password or await services.sharing.unlock(
            view, password, client=client_of(request)
        )
    except TooManyAttempts as exc:
        response = await render(request, "public_password.html", 429, view=view, error=exc.message)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if correct:
        unlocked = await session.get("unlocked") or []
        await session.set("unlocked", [*unlocked[-49:], view.share.id])
        return RedirectResponse(f"/s/{token}", status_code=303)
    return await render(request, "public_password.html", 401, view=view, error="That password is not right.")


async def _ensure_unlocked(request: Request, services: ServicesDep, session: SessionDep, view: ShareView) -> None:
    if not await _unlocked(request, services, session, view):
        raise SharePasswordRequired(f"This link needs its password: unlock it on its page, or send {PASSWORD_HEADER}.")


@router.get("/{token}/files/{file_id}", summary="Download one file of a share (counts as one download)")
async def download_file(
    token: str, request: Request, services: ServicesDep, session: SessionDep, file_id: FileId
) -> Response:
    view = await services.sharing.open(token)
    file = view.file(file_id)  # a wrong file id must not use up a download
    await _ensure_unlocked(request, services, session, view)
    span = requested_span(request, file)  # nor a range outside the file (its size shows only once unlocked)
    await services.sharing.take_download(view, [file], unlocked=True, client=client_of(request))
    return await send_file(services.storage, file, span, presign=services.settings.storage_presign)


@router.get("/{token}/thumbnails/{file_id}", include_in_schema=False)
async def thumbnail(
    token: str, request: Request, services: ServicesDep, session: SessionDep, file_id: FileId
) -> Response:
    view = await services.sharing.open(token)
    await _ensure_unlocked(request, services, session, view)
    return await send_thumbnail(services.storage, view.file(file_id))  # a preview is not a download


@router.get(
    "/{token}/previews/{file_id}",
    summary="Look at one file of a share in the browser (never counted as a download)",
    responses=SHARE_PREVIEW,
)
async def preview_file(
    token: str, request: Request, services: ServicesDep, session: SessionDep, file_id: FileId
) -> Response:
    view = await services.sharing.open(token)
    unlocked = await _unlocked(request, services, session, view)
    return send_preview(request, services, await services.previews.shared(view, file_id, unlocked=unlocked))


@router.get("/{token}/download", summary="Download a share: its one file, or all its files as a zip")
async def download_all(token: str, request: Request, services: ServicesDep, session: SessionDep) -> Response:
    view = await services.sharing.open(token)
    await _ensure_unlocked(request, services, session, view)
    single = view.files[0] if len(view.files) == 1 else None
    span = requested_span(request, single) if single else None  # a zip is made on the fly: no ranges
    await services.sharing.take_download(view, view.files, unlocked=True, client=client_of(request))
    if single:
        return await send_file(services.storage, single, span, presign=services.settings.storage_presign)
    return send_zip(services.storage, view.files, f"satchel-{token[:8]}.zip")


@status_router.get("/{token}/status", summary="What a share's page shows of it now: the downloads it has left")
async def share_status(
    token: str, request: Request, services: ServicesDep, session: SessionDep, response: Response
) -> ShareStatusOut:
    view = await services.sharing.open(token)  # an ended link: 410, with its reason, as its page says
    await _ensure_unlocked(request, services, session, view)  # a locked one tells nothing before its password
    response.headers["Cache-Control"] = "no-store"
    return ShareStatusOut.of(view.share)
