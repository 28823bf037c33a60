"""tus 1.0 at the edge, wherever resumable uploads are taken: the owner's own (``web/api/uploads.py``) and those
through an upload link (``web/public_request_uploads.py``).

Here is what both speak alike: the headers and how they are parsed, the version every answer carries, the
headers of an answer, and how the OpenAPI document describes them. Who may write an upload is each
route module's business.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC
from email.utils import format_datetime
from typing import Annotated, Any, Literal

from fastapi import Header, Path, Request, Response, status
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from satchel.domain.errors import DomainError, InvalidInput
from satchel.domain.uploads import Checksum
from satchel.services.uploads import UploadState
from satchel.web.bodies import declared_size
from satchel.web.openapi import Responses, problems

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,termination,checksum,expiration"
CHECKSUMS = "sha1,sha256,md5"
OFFSET_STREAM = "application/offset+octet-stream"
MAX_METADATA = 4096
TUS_PATHS = re.compile(r"/api/uploads(?:/|$)|/r/[^/]+/uploads(?:/|$)")  # the routes of both modules


class TusVersionUnsupported(DomainError):
    """Send Tus-Resumable: 1.0.0; it is the version of the protocol this server speaks."""

    status = 412


class NotAnOffsetStream(DomainError):
    """Send the bytes as Content-Type: application/offset+octet-stream."""

    status = 415


async def speaks_tus(request: Request) -> None:
    if request.method != "OPTIONS" and request.headers.get("tus-resumable") != TUS_VERSION:
        raise TusVersionUnsupported()


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
    """Every response of a tus route says which protocol version it speaks, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not TUS_PATHS.match(scope["path"]):
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


def file_name(metadata: dict[str, str]) -> str:
    return metadata.get("filename") or metadata.get("name") or ""


def file_type(metadata: dict[str, str]) -> str | None:
    return metadata.get("filetype") or metadata.get("type")


def checksum_of(header: str | None) -> Checksum | None:
    return Checksum.parse(header) if header else None


def has_body(request: Request) -> bool:
    """Whether a creation request carries first bytes (creation-with-upload); if so, they must be an offset stream."""
    sent = bool(declared_size(request)) or "chunked" in request.headers.get("transfer-encoding", "").lower()
    if sent:
        checked_media_type(request)
    return sent


def checked_media_type(request: Request) -> None:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != OFFSET_STREAM:
        raise NotAnOffsetStream()


def where(state: UploadState) -> dict[str, str]:
    """The headers that tell a client where its upload stands."""
    upload = state.upload
    headers = {"Upload-Offset": str(upload.offset), "Cache-Control": "no-store"}
    if state.file is not None:
        headers["Satchel-File-Id"] = state.file.id
    else:
        headers["Upload-Expires"] = format_datetime(upload.expires_at.astimezone(UTC), usegmt=True)
    return headers


def capabilities_response(max_upload_bytes: int) -> Response:
    """The answer to ``OPTIONS``: what this server supports, for anyone."""
    return Response(
        status_code=status.HTTP_204_NO_CONTENT,
        headers={
            "Tus-Extension": EXTENSIONS,
            "Tus-Max-Size": str(max_upload_bytes),
            "Tus-Checksum-Algorithm": CHECKSUMS,
        },
    )


# --- the OpenAPI document ------------------------------------------------------------------------

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


def tus_responses(*codes: int, said: dict[int, str] | None = None) -> Responses:
    """Problem answers for ``codes`` with what they mean to a tus client (``said`` says it where it differs);
    every tus answer may be refused credentials (401), say its protocol version (412) and meet an outage (503)."""
    meaning = DESCRIPTIONS | (said or {})
    return problems(*((code, meaning[code]) if code in meaning else code for code in (401, 412, *codes, 503)))


def header(description: str, schema: dict[str, Any] | None = None, *, required: bool = True) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema or {"type": "string"}}


_COUNT = {"type": "integer", "minimum": 0}
VERSION = {"Tus-Resumable": header("`1.0.0`, on every answer", {"type": "string", "const": TUS_VERSION})}
WHERE = {
    **VERSION,
    "Upload-Offset": header("how many bytes are stored", _COUNT),
    "Upload-Expires": header("when an unfinished upload is removed (RFC 9110 date)", required=False),
    "Satchel-File-Id": header("the file the upload became, once every byte is in", required=False),
}
CHUNK = {"content": {OFFSET_STREAM: {"schema": {"type": "string", "format": "binary"}}}}
CAPABILITIES: Responses = {
    204: {
        "description": "The protocol's capabilities; no credentials needed",
        "headers": {
            **VERSION,
            "Tus-Version": header("`1.0.0`"),
            "Tus-Extension": header(f"`{EXTENSIONS}`"),
            "Tus-Max-Size": header("`SATCHEL_MAX_UPLOAD_BYTES`", _COUNT),
            "Tus-Checksum-Algorithm": header(f"`{CHECKSUMS}`"),
        },
    },
    **problems(503),
}
CREATED: Responses = {201: {"description": "Created", "headers": {"Location": header("the new upload's URL"), **WHERE}}}
STANDING: Responses = {
    200: {
        "description": "Where the upload stands (no body)",
        "headers": {**WHERE, "Upload-Length": header("the upload's length", _COUNT)},
    }
}
STORED: Responses = {
    204: {"description": "Stored; the request that completes the upload names the file", "headers": WHERE}
}
ABANDONED: Responses = {204: {"description": "Abandoned", "headers": VERSION}}
FIRST_BYTES = {"requestBody": {"required": False, "description": "the upload's first bytes", **CHUNK}}
MORE_BYTES = {"requestBody": {"required": True, "description": "bytes from `Upload-Offset` on", **CHUNK}}
