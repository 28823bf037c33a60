"""/api/uploads/: resumable uploads over tus 1.0 — core, creation, creation-with-upload, termination,
checksum (sha1, sha256, md5) and expiration — so any tus client works unchanged.

Authentication is the API's own (a bearer token, or a browser session with its CSRF header).
An upload's offset lives in the database and its bytes in the object store's staging, so every
request may reach a different web process. When the last byte is in, the upload is an ordinary
file; the response names it in ``Satchel-File-Id``. The protocol's pieces are in ``web/tus.py``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response, status

from satchel.bootstrap import Services
from satchel.domain.accounts import User
from satchel.domain.uploads import Checksum
from satchel.services.uploads import UploadState
from satchel.web.bodies import tus_body
from satchel.web.openapi import SIGNED_IN
from satchel.web.security import ApiUser, ServicesDep, client_of
from satchel.web.tus import (
    ABANDONED,
    CAPABILITIES,
    CREATED,
    FIRST_BYTES,
    MORE_BYTES,
    STANDING,
    STORED,
    ChecksumHeader,
    LengthHeader,
    MetadataHeader,
    Offset,
    TusHeader,
    UploadId,
    capabilities_response,
    checked_media_type,
    checksum_of,
    file_name,
    file_type,
    has_body,
    parse_metadata,
    speaks_tus,
    tus_responses,
    where,
)
from satchel.web.urls import base_url

PREFIX = "/api/uploads"
router = APIRouter(prefix=PREFIX, tags=["uploads"], dependencies=[Depends(speaks_tus)])


async def _append_body(
    request: Request, user: User, services: Services, upload_id: str, *, offset: int, checksum: Checksum | None
) -> UploadState:
    """The request's body appended to the upload at ``offset``, as it streams in."""
    return await services.uploads.append(
        user,
        upload_id,
        offset=offset,
        body=tus_body(request, services.settings.body_timeout, checksum),
        client=client_of(request),
    )


@router.options(
    "/",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="What this tus server supports",
    response_class=Response,
    responses=CAPABILITIES,
)
async def capabilities(services: ServicesDep) -> Response:
    return capabilities_response(services.settings.max_upload_bytes)


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    summary="Start a resumable upload (optionally with its first bytes)",
    dependencies=SIGNED_IN,
    response_class=Response,
    responses={**CREATED, **tus_responses(400, 403, 408, 413, 415, 422, 429, 460)},
    openapi_extra=FIRST_BYTES,
)
async def create_upload(
    request: Request,
    user: ApiUser,
    services: ServicesDep,
    tus_resumable: TusHeader,
    upload_length: LengthHeader,
    upload_metadata: MetadataHeader = None,
    upload_checksum: ChecksumHeader = None,
) -> Response:
    """`Location` names the new upload; send its bytes with `PATCH`. A body sent with this request
    (`Content-Type: application/offset+octet-stream`) is its first bytes."""
    metadata = parse_metadata(upload_metadata)
    checksum = checksum_of(upload_checksum)
    first = has_body(request)
    upload = await services.uploads.create(
        user, length=upload_length, name=file_name(metadata), content_type=file_type(metadata)
    )
    state = UploadState(upload)
    if first:
        state = await _append_body(request, user, services, upload.id, offset=0, checksum=checksum)
    location = f"{base_url(request)}{PREFIX}/{upload.id}"
    return Response(status_code=status.HTTP_201_CREATED, headers={"Location": location, **where(state)})


@router.head(
    "/{upload_id}",
    summary="How far an upload got",
    dependencies=SIGNED_IN,
    response_class=Response,
    responses={**STANDING, **tus_responses(404, 410, 422, 423)},
)
async def upload_offset(
    request: Request, upload_id: UploadId, user: ApiUser, services: ServicesDep, tus_resumable: TusHeader
) -> Response:
    """`Upload-Offset` is where to resume; once the upload is a file, `Satchel-File-Id` names it."""
    state = await services.uploads.state(user, upload_id, client=client_of(request))
    headers = {**where(state), "Upload-Length": str(state.upload.length)}
    return Response(status_code=status.HTTP_200_OK, headers=headers)


@router.patch(
    "/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Send bytes of an upload, from its offset",
    dependencies=SIGNED_IN,
    response_class=Response,
    responses={**STORED, **tus_responses(400, 403, 404, 408, 409, 410, 413, 415, 422, 423, 460)},
    openapi_extra=MORE_BYTES,
)
async def append(
    upload_id: UploadId,
    request: Request,
    user: ApiUser,
    services: ServicesDep,
    tus_resumable: TusHeader,
    upload_offset: Offset,
    upload_checksum: ChecksumHeader = None,
) -> Response:
    """The body (`application/offset+octet-stream`) continues the upload at `Upload-Offset`. Bytes count as
    soon as they are stored, so after a dropped connection ask `HEAD` where to resume."""
    checked_media_type(request)
    checksum = checksum_of(upload_checksum)
    state = await _append_body(request, user, services, upload_id, offset=upload_offset, checksum=checksum)
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=where(state))


@router.delete(
    "/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Abandon an upload",
    dependencies=SIGNED_IN,
    response_class=Response,
    responses={**ABANDONED, **tus_responses(403, 404, 422, 423)},
)
async def terminate(upload_id: UploadId, user: ApiUser, services: ServicesDep, tus_resumable: TusHeader) -> Response:
    """Its staged bytes are removed at once; a finished upload's file is not touched."""
    await services.uploads.terminate(user, upload_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
