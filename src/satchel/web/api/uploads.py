"""/api/uploads/: resumable uploads over tus 1.0 — core, creation, creation-with-upload, termination,
checksum (sha1, sha256, md5) and expiration — so any tus client works unchanged.

Authentication is the API's own (a bearer token, or a browser session with its CSRF header).
An upload's offset lives in the database and its bytes in the object store's staging, so every
request may reach a different web process. When the last byte is in, the upload is an ordinary
file; the response names it in ``Satchel-File-Id``.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC
from email.utils import format_datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Request, Response, status
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from satchel.bootstrap import Services
from satchel.domain.accounts import User
from satchel.domain.errors import DomainError, InvalidInput
from satchel.domain.uploads import Checksum
from satchel.services.uploads import UploadState
from satchel.web.bodies import body_stream, declared_size
from satchel.web.openapi import SIGNED_IN, Responses, problems
from satchel.web.security import ApiUser, ServicesDep, client_of
from satchel.web.urls import base_url

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,termination,checksum,expiration"
CHECKSUMS = "sha1,sha256,md5"
OFFSET_STREAM = "application/offset+octet-stream"
PREFIX = "/api/uploads"
MAX_METADATA = 4096


class TusVersionUnsupported(DomainError):
    """Send Tus-Resumable: 1.0.0; it is the version of the protocol this server speaks."""

    status = 412


class NotAnOffsetStream(DomainError):
    """Send the bytes as Content-Type: application/offset+octet-stream."""

    status = 415


async def speaks_tus(request: Request) -> None:
    if request.method != "OPTIONS" and request.headers.get("tus-resumable") != TUS_VERSION:
        raise TusVersionUnsupported()


router = APIRouter(prefix=PREFIX, tags=["uploads"], dependencies=[Depends(speaks_tus)])

UploadId = Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="as in the Location of the upload")]
Offset = Annotated[int, Header(alias="Upload-Offset", ge=0, le=2**62, description="where these bytes start")]
_DIGEST = "[A-Za-z0-9+/]"  # base64 of a sha1 (20 bytes), sha256 (32) or md5 (16) digest, as domain.uploads.Checksum
CHECKSUM_PATTERN = (
    f"^[ \\t]*(?:sha1 [ \\t]*{_DIGEST}{{27}}=|sha256 [ \\t]*{_DIGEST}{{43}}=|md5 [ \\t]*{_DIGEST}{{22}}==)[ \\t]*$"
)
ChecksumHeader = Annotated[
    str | None,
    Header(
        alias="Upload-Checksum",
        max_length=200,
        description="`sha1 <base64 digest>` (or sha256, md5) of this request's body",
        json_schema_extra={"pattern": CHECKSUM_PATTERN},
    ),
]
LengthHeader = Annotated[
    int,
    Header(
        alias="Upload-Length",
        le=2**62,
        description="the file's size in bytes; empty files are refused (at most `SATCHEL_MAX_UPLOAD_BYTES`)",
        json_schema_extra={"minimum": 1},  # the domain refuses 0 and less, saying why
    ),
]
MetadataHeader = Annotated[
    str | None,
    Header(
        alias="Upload-Metadata",
        max_length=MAX_METADATA,
        description="comma-separated `key base64(value)` pairs: `filename` (required), `filetype`",
    ),
]
# Checked by speaks_tus first, so another version is answered 412 as the protocol says, not 422.
TusHeader = Annotated[Literal["1.0.0"], Header(alias="Tus-Resumable", description="always `1.0.0`")]


class TusHeaders:
    """Every response under /api/uploads says which protocol version it speaks, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Tus-Resumable"] = TUS_VERSION
                headers["Tus-Version"] = TUS_VERSION
            await send(message)

        await self.app(scope, receive, send_with_version)


def parse_metadata(header: str | None) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64(value)`` pairs."""
    pairs: dict[str, str] = {}
    for item in (header or "").split(","):
        key, _, encoded = item.strip().partition(" ")
        if not key:
            continue
        try:
            pairs[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise InvalidInput(f"Upload-Metadata: the value of {key[:50]!r} is not base64 of UTF-8 text.") from None
    return pairs


def _has_body(request: Request) -> bool:
    return bool(declared_size(request)) or "chunked" in request.headers.get("transfer-encoding", "").lower()


async def _append_body(
    request: Request, user: User, services: Services, upload_id: str, *, offset: int, checksum: Checksum | None
) -> UploadState:
    """The request's body appended to the upload at ``offset``, as it streams in."""
    return await services.uploads.append(
        user,
        upload_id,
        offset=offset,
        chunks=body_stream(request, services.settings.body_timeout),
        declared_size=declared_size(request),
        checksum=checksum,
        client=client_of(request),
    )


def _checked_media_type(request: Request) -> None:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != OFFSET_STREAM:
        raise NotAnOffsetStream()


def _headers(state: UploadState) -> dict[str, str]:
    upload = state.upload
    headers = {"Upload-Offset": str(upload.offset), "Cache-Control": "no-store"}
    if state.file is not None:
        headers["Satchel-File-Id"] = state.file.id
    else:
        headers["Upload-Expires"] = format_datetime(upload.expires_at.astimezone(UTC), usegmt=True)
    return headers


DESCRIPTIONS = {
    400: "`Upload-Checksum` names another algorithm, or is not base64 of a digest",
    404: "No such upload, or not yours",
    408: "The body stopped arriving (`SATCHEL_BODY_TIMEOUT`); what was stored counts, ask `HEAD`",
    409: "`Upload-Offset` is not where the upload stands; ask with `HEAD`",
    410: "The upload was abandoned and removed",
    412: "`Tus-Resumable` is not `1.0.0`",
    413: "Larger than `SATCHEL_MAX_UPLOAD_BYTES`, than your quota, or than what is left of the upload",
    415: "The body is not `application/offset+octet-stream`",
    422: "Invalid headers: `Upload-Metadata` needs a base64 `filename`; empty files are refused",
    423: "Another request is writing to this upload; ask `HEAD`, then retry",
    429: "Too many uploads; wait `Retry-After` seconds",
    460: "The body does not match `Upload-Checksum`; nothing of it was kept",
}


def _responses(*codes: int) -> Responses:
    """Every tus answer is signed in (401), may meet an outage (503) and says its protocol version (412)."""
    return problems(*((code, DESCRIPTIONS[code]) if code in DESCRIPTIONS else code for code in (401, 412, *codes, 503)))


def _header(description: str, schema: dict[str, Any] | None = None, *, required: bool = True) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema or {"type": "string"}}


_COUNT = {"type": "integer", "minimum": 0}
_TUS = {"Tus-Resumable": _header("`1.0.0`, on every answer", {"type": "string", "const": TUS_VERSION})}
_WHERE = {
    **_TUS,
    "Upload-Offset": _header("how many bytes are stored", _COUNT),
    "Upload-Expires": _header("when an unfinished upload is removed (RFC 9110 date)", required=False),
    "Satchel-File-Id": _header("the file the upload became, once every byte is in", required=False),
}
_CHUNK = {
    "content": {"application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}},
}


@router.options(
    "/",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="What this tus server supports",
    response_class=Response,
    responses={
        204: {
            "description": "The protocol's capabilities; no credentials needed",
            "headers": {
                **_TUS,
                "Tus-Version": _header("`1.0.0`"),
                "Tus-Extension": _header(f"`{EXTENSIONS}`"),
                "Tus-Max-Size": _header("`SATCHEL_MAX_UPLOAD_BYTES`", _COUNT),
                "Tus-Checksum-Algorithm": _header(f"`{CHECKSUMS}`"),
            },
        },
        **problems(503),
    },
)
async def capabilities(services: ServicesDep) -> Response:
    return Response(
        status_code=status.HTTP_204_NO_CONTENT,
        headers={
            "Tus-Extension": EXTENSIONS,
            "Tus-Max-Size": str(services.settings.max_upload_bytes),
            "Tus-Checksum-Algorithm": CHECKSUMS,
        },
    )


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    summary="Start a resumable upload (optionally with its first bytes)",
    dependencies=SIGNED_IN,
    response_class=Response,
    responses={
        201: {"description": "Created", "headers": {"Location": _header("the new upload's URL"), **_WHERE}},
        **_responses(400, 403, 408, 413, 415, 422, 429, 460),
    },
    openapi_extra={"requestBody": {"required": False, "description": "the upload's first bytes", **_CHUNK}},
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
    checksum = Checksum.parse(upload_checksum) if upload_checksum else None
    if _has_body(request):
        _checked_media_type(request)
    upload = await services.uploads.create(
        user,
        length=upload_length,
        name=metadata.get("filename") or metadata.get("name") or "",
        content_type=metadata.get("filetype") or metadata.get("type"),
    )
    state = UploadState(upload)
    if _has_body(request):
        state = await _append_body(request, user, services, upload.id, offset=0, checksum=checksum)
    location = f"{base_url(request)}{PREFIX}/{upload.id}"
    return Response(status_code=status.HTTP_201_CREATED, headers={"Location": location, **_headers(state)})


@router.head(
    "/{upload_id}",
    summary="How far an upload got",
    dependencies=SIGNED_IN,
    response_class=Response,
    responses={
        200: {
            "description": "Where the upload stands (no body)",
            "headers": {**_WHERE, "Upload-Length": _header("the upload's length", _COUNT)},
        },
        **_responses(404, 410, 422, 423),
    },
)
async def upload_offset(
    request: Request, upload_id: UploadId, user: ApiUser, services: ServicesDep, tus_resumable: TusHeader
) -> Response:
    """`Upload-Offset` is where to resume; once the upload is a file, `Satchel-File-Id` names it."""
    state = await services.uploads.state(user, upload_id, client=client_of(request))
    headers = {**_headers(state), "Upload-Length": str(state.upload.length)}
    return Response(status_code=status.HTTP_200_OK, headers=headers)


@router.patch(
    "/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Send bytes of an upload, from its offset",
    dependencies=SIGNED_IN,
    response_class=Response,
    responses={
        204: {"description": "Stored; the request that completes the upload names the file", "headers": _WHERE},
        **_responses(400, 403, 404, 408, 409, 410, 413, 415, 422, 423, 460),
    },
    openapi_extra={"requestBody": {"required": True, "description": "bytes from `Upload-Offset` on", **_CHUNK}},
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
    _checked_media_type(request)
    checksum = Checksum.parse(upload_checksum) if upload_checksum else None
    state = await _append_body(request, user, services, upload_id, offset=upload_offset, checksum=checksum)
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=_headers(state))


@router.delete(
    "/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Abandon an upload",
    dependencies=SIGNED_IN,
    response_class=Response,
    responses={204: {"description": "Abandoned", "headers": _TUS}, **_responses(403, 404, 422, 423)},
)
async def terminate(upload_id: UploadId, user: ApiUser, services: ServicesDep, tus_resumable: TusHeader) -> Response:
    """Its staged bytes are removed at once; a finished upload's file is not touched."""
    await services.uploads.terminate(user, upload_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
