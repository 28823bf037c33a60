"""/r/{token}/uploads/: resumable uploads through an upload link, over tus 1.0 with the same extensions as
/api/uploads/ (creation, creation-with-upload, termination, checksum, expiration).

No account: the link is the authority, with its password where it has one (``X-Request-Password`` on every
request, or the browser session that unlocked the page plus its CSRF header), exactly as for
``PUT /r/{token}/files/{name}``. The link's limits, its owner's quota and the server's maximum apply when an
upload starts and when it becomes a file; an upload is reached only through the link it started on.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response, status

from satchel.web.bodies import tus_body
from satchel.web.public_requests import PASSWORD_HEADER, REQUEST_PASSWORD, credentials_of
from satchel.web.security import CSRF_HEADER, ServicesDep, SessionDep, client_of
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

router = APIRouter(prefix="/r/{token}/uploads", tags=["public"], dependencies=[Depends(speaks_tus)])

# What a tus answer means when the upload comes in through a link rather than the owner's own account.
THROUGH_A_LINK = {
    401: f"The link has a password: send it as `{PASSWORD_HEADER}` with every request; or it was wrong",
    403: f"A browser that unlocked the link must send its page's `{CSRF_HEADER}`",
    404: "No such link, or no such upload through this link",
    410: "The link expired, was closed or is full (its unfinished uploads are removed), or the upload was abandoned",
    413: "Larger than what the link still takes, than `SATCHEL_MAX_UPLOAD_BYTES`, than its owner's quota, or than "
    "what is left of the upload; the problem says which",
    429: "Too many uploads started through this link; wait `Retry-After` seconds",
}


@router.options(
    "/",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="What tus uploads through an upload link support",
    response_class=Response,
    responses=CAPABILITIES,
)
async def link_capabilities(token: str, services: ServicesDep) -> Response:
    return capabilities_response(services.settings.max_upload_bytes)


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    summary="Start a resumable upload through an upload link (optionally with its first bytes)",
    dependencies=REQUEST_PASSWORD,
    response_class=Response,
    responses={**CREATED, **tus_responses(400, 403, 404, 408, 410, 413, 415, 422, 429, 460, said=THROUGH_A_LINK)},
    openapi_extra=FIRST_BYTES,
)
async def create_link_upload(
    token: str,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    tus_resumable: TusHeader,
    upload_length: LengthHeader,
    upload_metadata: MetadataHeader = None,
    upload_checksum: ChecksumHeader = None,
) -> Response:
    """`Location` names the new upload; send its bytes with `PATCH`. `Upload-Length` must fit what the link
    still takes, its owner's quota and the server's maximum (`413` says which it does not)."""
    metadata = parse_metadata(upload_metadata)
    checksum = checksum_of(upload_checksum)
    first = tus_body(request, services.settings.body_timeout, checksum) if has_body(request) else None
    state = await services.request_uploads.create(
        token,
        await credentials_of(request, session),
        client=client_of(request),
        length=upload_length,
        name=file_name(metadata),
        content_type=file_type(metadata),
        first=first,
    )
    location = f"{base_url(request)}/r/{token}/uploads/{state.upload.id}"
    return Response(status_code=status.HTTP_201_CREATED, headers={"Location": location, **where(state)})


@router.head(
    "/{upload_id}",
    summary="How far an upload through an upload link got",
    dependencies=REQUEST_PASSWORD,
    response_class=Response,
    responses={**STANDING, **tus_responses(403, 404, 410, 413, 422, 423, said=THROUGH_A_LINK)},
)
async def link_upload_offset(
    token: str,
    upload_id: UploadId,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    tus_resumable: TusHeader,
) -> Response:
    """`Upload-Offset` is where to resume; once the upload is a file, `Satchel-File-Id` names it."""
    credentials = await credentials_of(request, session)
    state = await services.request_uploads.state(token, upload_id, credentials, client=client_of(request))
    return Response(status_code=status.HTTP_200_OK, headers={**where(state), "Upload-Length": str(state.upload.length)})


@router.patch(
    "/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Send bytes of an upload through an upload link, from its offset",
    dependencies=REQUEST_PASSWORD,
    response_class=Response,
    responses={**STORED, **tus_responses(400, 403, 404, 408, 409, 410, 413, 415, 422, 423, 460, said=THROUGH_A_LINK)},
    openapi_extra=MORE_BYTES,
)
async def append_through_link(
    token: str,
    upload_id: UploadId,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    tus_resumable: TusHeader,
    upload_offset: Offset,
    upload_checksum: ChecksumHeader = None,
) -> Response:
    """The body continues the upload at `Upload-Offset`; the request that completes it makes it a file in the
    link owner's account, or is refused (`410`, nothing kept) if the link took its last file meanwhile."""
    checked_media_type(request)
    state = await services.request_uploads.append(
        token,
        upload_id,
        await credentials_of(request, session),
        client=client_of(request),
        offset=upload_offset,
        body=tus_body(request, services.settings.body_timeout, checksum_of(upload_checksum)),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=where(state))


@router.delete(
    "/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Abandon an upload through an upload link",
    dependencies=REQUEST_PASSWORD,
    response_class=Response,
    responses={**ABANDONED, **tus_responses(403, 404, 410, 413, 422, 423, said=THROUGH_A_LINK)},
)
async def terminate_through_link(
    token: str,
    upload_id: UploadId,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    tus_resumable: TusHeader,
) -> Response:
    """Its staged bytes are removed at once; a finished upload's file stays the owner's."""
    credentials = await credentials_of(request, session)
    await services.request_uploads.terminate(token, upload_id, credentials, client=client_of(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
