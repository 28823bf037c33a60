"""/api/files: upload (raw PUT for curl, multipart POST), list, details, rename, delete, content."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from satchel.bootstrap import Services
from satchel.domain.accounts import User
from satchel.domain.clock import utcnow
from satchel.domain.errors import DomainError, InvalidInput
from satchel.domain.files import StoredFile
from satchel.domain.sharing import MAX_DOWNLOADS, ShareTerms
from satchel.ports.persistence import FileSort
from satchel.runtime.logging import get_logger
from satchel.web.api.multipart import MultipartBody
from satchel.web.api.schemas import (
    ALLOW_PREVIEWS,
    LINK_HOURS,
    SHORTEST_LINK_HOURS,
    FileDetailsOut,
    FileOut,
    Page,
    RenameIn,
    ShareOut,
    UploadOut,
)
from satchel.web.bodies import body_stream, declared_size
from satchel.web.downloads import requested_span, send_file, send_thumbnail
from satchel.web.openapi import DOWNLOAD, PREVIEW, SIGNED_IN, Responses, problems
from satchel.web.params import FileId, FileName, Offset
from satchel.web.previews import send_preview
from satchel.web.security import ApiUser, ServicesDep, client_of
from satchel.web.urls import base_url

log = get_logger("satchel.files")
router = APIRouter(prefix="/api/files", tags=["files"], dependencies=SIGNED_IN, responses=problems(401, 503))
_BYTES = {"schema": {"type": "string", "format": "binary"}}
_UPLOAD_REFUSED = problems(
    (403, "Missing `X-CSRF-Token` (browser sessions)"),
    (408, "The body stopped arriving (`SATCHEL_BODY_TIMEOUT`); nothing was kept"),
    (413, "Larger than `SATCHEL_MAX_UPLOAD_BYTES` or than your remaining quota; nothing was kept"),
    (422, "Invalid terms or name, or an empty file"),
    (429, "Too many uploads; wait `Retry-After` seconds"),
)
FILE_BODY = {
    "required": True,
    "description": "The file's bytes (one or more); the request's `Content-Type`, if any, becomes the file's.",
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary", "minLength": 1}}},
}
_FORM_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "file": {
                        "description": "one part per file, each with a file name and one or more bytes",
                        "type": "array",
                        "items": {"type": "string", "format": "binary", "minLength": 1},
                        "minItems": 1,
                    }
                },
                "required": ["file"],
            }
        }
    },
}
_DOWNLOAD: Responses = DOWNLOAD | problems(
    (403, "Quarantined: malware was found in the file"), (404, "No such file, or not yours"), 416
)


class PartialPutRefused(DomainError):
    """No partial PUT (Content-Range) here: send the whole file, or resume uploads at /api/uploads/ (tus 1.0)."""

    status = 400  # RFC 9110 section 14.5: what a server that does not support partial PUT must answer


@asynccontextmanager
async def _all_or_nothing(services: Services, user: User) -> AsyncIterator[list[StoredFile]]:
    """Files stored in the block are deleted again when the block fails: a request keeps all of them or none."""
    stored: list[StoredFile] = []
    try:
        yield stored
    except BaseException:
        for file in stored:
            try:
                await services.files.delete(user, file.id)
            except Exception as exc:  # the original failure is what the client must hear about
                log.warning("upload.undo_failed", file_id=file.id, error=type(exc).__name__)
        raise


@router.get("", summary="List your files", responses=problems(422))
async def list_files(
    user: ApiUser,
    services: ServicesDep,
    sort: FileSort = "-created",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> Page[FileOut]:
    files, total = await services.files.list_owned(user, sort=sort, limit=limit, offset=offset)
    return Page(items=[FileOut.of(f) for f in files], total=total, limit=limit, offset=offset)


@router.put(
    "/{file_id:path}",  # folders in the name are dropped, so PUT reaches every path below /api/files/
    status_code=status.HTTP_201_CREATED,
    summary="Upload one file as the raw request body",
    responses=problems((400, "Partial PUT (`Content-Range`): resume big uploads at /api/uploads/ instead"))
    | _UPLOAD_REFUSED,
    openapi_extra={"requestBody": FILE_BODY},
)
async def put_file(
    name: FileName,
    request: Request,
    user: ApiUser,
    services: ServicesDep,
    share: bool = True,
    expires_in_hours: Annotated[float | None, Query(ge=SHORTEST_LINK_HOURS, description=LINK_HOURS)] = None,
    max_downloads: Annotated[int | None, Query(ge=1, le=MAX_DOWNLOADS)] = None,
    allow_previews: Annotated[bool, Query(description=ALLOW_PREVIEWS)] = False,
) -> UploadOut:
    """`curl -T report.pdf -H "Authorization: Bearer $TOKEN" $URL/api/files/report.pdf`: the body streams
    straight to storage; the answer holds the file and, unless `share=false`, a ready share link."""
    if "content-range" in request.headers:
        raise PartialPutRefused()
    # The terms are checked before a byte is read.
    terms = services.sharing.terms(expires_in_hours, max_downloads, allow_previews=allow_previews) if share else None
    body = body_stream(request, services.settings.body_timeout)
    return await keep_and_share(
        request,
        services,
        user,
        terms,
        lambda: services.files.upload(
            user,
            name,
            body,
            content_type=request.headers.get("content-type"),
            declared_size=declared_size(request),
            client=client_of(request),
        ),
    )


async def keep_and_share(
    request: Request,
    services: Services,
    user: User,
    terms: ShareTerms | None,
    store: Callable[[], Awaitable[StoredFile]],
) -> UploadOut:
    """Store one file with ``store``, then (with ``terms``) share it: both, or neither."""
    async with _all_or_nothing(services, user) as stored:
        file = await store()
        stored.append(file)
        view = await services.sharing.create(user, [file.id], terms, client=client_of(request)) if terms else None
    link = ShareOut.of(view, base_url(request), utcnow()) if view else None
    return UploadOut(file=FileOut.of(file), share=link)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Upload files as multipart/form-data",
    responses=problems((400, "The multipart body is malformed")) | _UPLOAD_REFUSED,
    openapi_extra={"requestBody": _FORM_BODY},
)
async def post_files(request: Request, user: ApiUser, services: ServicesDep) -> Page[FileOut]:
    """Each `file` part streams to storage as it arrives; nothing is spooled to disk."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise InvalidInput("Send multipart/form-data with one or more 'file' parts.")
    body = MultipartBody(content_type, body_stream(request, services.settings.body_timeout))
    async with _all_or_nothing(services, user) as stored:
        async for part in body.files():
            file = await services.files.upload(
                user, part.filename, part.chunks, content_type=part.content_type, client=client_of(request)
            )
            stored.append(file)
        if not stored:
            raise InvalidInput("No 'file' part in the request.")
    return Page(items=[FileOut.of(f) for f in stored], total=len(stored), limit=len(stored), offset=0)


@router.get(
    "/{file_id}", summary="A file's details and the shares that include it", responses=problems((404, "No such file"))
)
async def get_file(request: Request, user: ApiUser, services: ServicesDep, file_id: FileId) -> FileDetailsOut:
    details = await services.files.details(user, file_id)
    base, now = base_url(request), utcnow()
    views = await services.sharing.with_files(details.shares)
    return FileDetailsOut(**FileOut.of(details.file).model_dump(), shares=[ShareOut.of(v, base, now) for v in views])


@router.patch("/{file_id}", summary="Rename a file", responses=problems(403, (404, "No such file"), 422))
async def rename_file(body: RenameIn, user: ApiUser, services: ServicesDep, file_id: FileId) -> FileOut:
    return FileOut.of(await services.files.rename(user, file_id, body.name))


@router.delete(
    "/{file_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a file and its bytes",
    responses=problems(403, (404, "No such file")),
)
async def delete_file(request: Request, user: ApiUser, services: ServicesDep, file_id: FileId) -> Response:
    await services.files.delete(user, file_id, client=client_of(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{file_id}/content",
    summary="Download your own file (does not count against shares)",
    response_class=Response,
    responses=_DOWNLOAD,
)
async def file_content(request: Request, user: ApiUser, services: ServicesDep, file_id: FileId) -> Response:
    file = await services.files.owned(user, file_id)
    file.ensure_downloadable(scan_required=False)  # owners may fetch unscanned files, never infected ones
    span = requested_span(request, file)
    return await send_file(services.storage, file, span, presign=services.settings.storage_presign)


@router.get(
    "/{file_id}/thumbnail",
    summary="A small WebP preview of an image file",
    response_class=Response,
    responses={
        200: {"description": "The preview", "content": {"image/webp": _BYTES}},
        **problems((404, "No such file, or it has no preview")),
    },
)
async def file_thumbnail(user: ApiUser, services: ServicesDep, file_id: FileId) -> Response:
    file = await services.files.owned(user, file_id)
    return await send_thumbnail(services.storage, file)


@router.get(
    "/{file_id}/preview",
    summary="Look at your file in the browser: an image, audio, video, PDF or text (never HTML or SVG)",
    response_class=Response,
    responses=PREVIEW
    | problems(
        (403, "Quarantined: malware was found in the file"),
        (404, "No such file, or not yours, or it has no preview (not a type browsers show safely)"),
        416,
    ),
)
async def file_preview(request: Request, user: ApiUser, services: ServicesDep, file_id: FileId) -> Response:
    return send_preview(request, services, await services.previews.own(user, file_id))
