"""/api/files: upload (raw PUT for curl, multipart POST), list, details, rename, delete, content."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status

from satchel.domain.errors import InvalidInput
from satchel.domain.files import StoredFile
from satchel.domain.sharing import ShareTerms
from satchel.services.accounts import utcnow
from satchel.web.api.multipart import stream_parts
from satchel.web.api.schemas import FileDetailsOut, FileOut, Page, RenameIn, ShareOut, UploadOut
from satchel.web.downloads import send_file, send_thumbnail
from satchel.web.security import ApiUser, ServicesDep
from satchel.web.urls import base_url

router = APIRouter(prefix="/api/files", tags=["files"])
Sort = Literal["-created", "created", "name", "-name", "size", "-size"]


def _declared_size(request: Request) -> int | None:
    length = request.headers.get("content-length")
    return int(length) if length and length.isdigit() else None


@router.get("", summary="List your files")
async def list_files(
    user: ApiUser,
    services: ServicesDep,
    sort: Sort = "-created",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[FileOut]:
    files, total = await services.files.list_owned(user, sort=sort, limit=limit, offset=offset)
    return Page(items=[FileOut.of(f) for f in files], total=total, limit=limit, offset=offset)


@router.put("/{name:path}", status_code=status.HTTP_201_CREATED, summary="Upload one file as the raw request body")
async def put_file(
    name: str,
    request: Request,
    user: ApiUser,
    services: ServicesDep,
    share: bool = True,
    expires_in_hours: Annotated[float | None, Query(gt=0, description="default SATCHEL_SHARE_DEFAULT_DAYS")] = None,
    max_downloads: Annotated[int | None, Query(ge=1)] = None,
) -> UploadOut:
    """`curl -T report.pdf -H "Authorization: Bearer $TOKEN" $URL/api/files/report.pdf`: the body streams
    straight to storage; the answer holds the file and, unless `share=false`, a ready share link."""
    stored = await services.files.upload(
        user,
        name,
        request.stream(),
        content_type=request.headers.get("content-type"),
        declared_size=_declared_size(request),
    )
    link = None
    if share:
        asked = timedelta(hours=expires_in_hours) if expires_in_hours else None
        default = timedelta(days=services.settings.share_default_days)
        expires = min(asked or default, timedelta(days=services.settings.share_max_days))
        view = await services.sharing.create(user, [stored.id], ShareTerms(expires, max_downloads))
        link = ShareOut.of(view, base_url(request), utcnow())
    return UploadOut(file=FileOut.of(stored), share=link)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Upload files as multipart/form-data")
async def post_files(request: Request, user: ApiUser, services: ServicesDep) -> Page[FileOut]:
    """Each `file` part streams to storage as it arrives; nothing is spooled to disk."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidInput("Send multipart/form-data with one or more 'file' parts.")
    stored: list[StoredFile] = []
    try:
        async for part_name, content_type, chunks in stream_parts(request):
            stored.append(await services.files.upload(user, part_name, chunks, content_type=content_type))
    except BaseException:
        for file in stored:  # all or nothing: a failed part undoes the parts before it
            await services.files.delete(user, file.id)
        raise
    if not stored:
        raise InvalidInput("No 'file' part in the request.")
    return Page(items=[FileOut.of(f) for f in stored], total=len(stored), limit=len(stored), offset=0)


@router.get("/{file_id}", summary="A file's details and the shares that include it")
async def get_file(file_id: str, request: Request, user: ApiUser, services: ServicesDep) -> FileDetailsOut:
    details = await services.files.details(user, file_id)
    base, now = base_url(request), utcnow()
    views = await services.sharing.with_files(details.shares)
    return FileDetailsOut(**FileOut.of(details.file).model_dump(), shares=[ShareOut.of(v, base, now) for v in views])


@router.patch("/{file_id}", summary="Rename a file")
async def rename_file(file_id: str, body: RenameIn, user: ApiUser, services: ServicesDep) -> FileOut:
    return FileOut.of(await services.files.rename(user, file_id, body.name))


@router.delete("/{file_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a file and its bytes")
async def delete_file(file_id: str, user: ApiUser, services: ServicesDep) -> Response:
    await services.files.delete(user, file_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{file_id}/content", summary="Download your own file (does not count against shares)")
async def file_content(file_id: str, request: Request, user: ApiUser, services: ServicesDep) -> Response:
    file = await services.files.owned(user, file_id)
    file.ensure_downloadable(scan_required=False)  # owners may fetch unscanned files, never infected ones
    return await send_file(request, services.storage, file, presign=services.settings.storage_presign)


@router.get("/{file_id}/thumbnail", summary="A small WebP preview of an image file")
async def file_thumbnail(file_id: str, user: ApiUser, services: ServicesDep) -> Response:
    file = await services.files.owned(user, file_id)
    return await send_thumbnail(services.storage, file)
