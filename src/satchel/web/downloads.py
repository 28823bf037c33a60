"""Sending stored bytes: one file with Range support, several as a zip made on the fly.

Whatever the store, one parser decides what a Range header asks for: a single range is sent as 206, a
range wholly outside the file is a 416 problem, and anything else (several ranges, another unit, bad
syntax, a stale If-Range) is ignored and the whole file sent, as RFC 9110 allows. Local files are then
handed to Starlette's FileResponse (sendfile-style); other stores stream in large blocks; S3 may instead
redirect to a short-lived presigned URL. Memory stays flat whatever the size: nothing is read whole.

Every byte a download hands the server is counted here (``satchel_download_bytes_total``), as it goes:
a download cut short counts what was sent. A presigned redirect sends nothing through us, and a
preview is not a download.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

from fastapi import HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from satchel.adapters.storage import content_disposition
from satchel.domain.errors import NotFound
from satchel.domain.files import INFECTED, StoredFile
from satchel.ports.storage import ObjectStore
from satchel.runtime.metrics.instruments import DOWNLOAD_BYTES
from satchel.web.security import DOWNLOAD_POLICY

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_BEYOND = 10**18  # any position past 18 digits lies outside every file; int() of thousands of digits is refused
Span = tuple[int, int]  # start, end exclusive


def _counting(send: Send) -> Send:
    """``send``, counting the body bytes the server took (a file handed over by path: its Content-Length)."""
    length = 0

    async def counted(message: Message) -> None:
        nonlocal length
        await send(message)
        kind = message["type"]
        if kind == "http.response.body":
            DOWNLOAD_BYTES.inc(len(message.get("body", b"")))
        elif kind == "http.response.start":
            length = int(dict(message.get("headers", ())).get(b"content-length", b"0"))
        elif kind == "http.response.pathsend":
            DOWNLOAD_BYTES.inc(length)

    return counted


class _CountedStream(StreamingResponse):
    counted = True  # a download's bytes; a preview's are not

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, _counting(send) if self.counted else send)


class _LocalFile(FileResponse):
    """A local file sent sendfile-style, with the range we decided on rather than whatever the request said."""

    chunk_size = 1024 * 1024  # fewer, larger reads than the default 64 KiB

    def __init__(
        self, path: Path, span: Span | None, *, media_type: str, headers: dict[str, str], counted: bool = True
    ) -> None:
        super().__init__(path, media_type=media_type, headers=headers)
        self._range = f"bytes={span[0]}-{span[1] - 1}".encode() if span else None
        self._counted = counted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"range", b"if-range")]
        if self._range:
            headers.append((b"range", self._range))
        await super().__call__({**scope, "headers": headers}, receive, _counting(send) if self._counted else send)


def _headers(file: StoredFile) -> dict[str, str]:
    return {
        "Content-Disposition": content_disposition(file.name),
        "ETag": f'"{file.sha256}"',
        "Content-Security-Policy": DOWNLOAD_POLICY,
        "Cache-Control": "private, no-store",
        "Accept-Ranges": "bytes",
    }


def _position(digits: str) -> int:
    return int(digits) if len(digits) <= 18 else _BEYOND


def requested_span(request: Request, file: StoredFile) -> Span | None:
    """The one byte range the request asks for, or None for the whole file; 416 when it lies outside the file.

    Called before a download is counted, so a refused range never uses one up.
    """
    header, etag = request.headers.get("range"), f'"{file.sha256}"'
    if not header or request.headers.get("if-range", etag) != etag:
        return None  # the file changed since the client's first part: it needs all of it
    match = _RANGE.fullmatch(header.strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if not first:  # the last N bytes
        suffix = _position(last)
        if suffix == 0 or file.size == 0:
            raise _unsatisfiable(file)
        return max(0, file.size - suffix), file.size
    start = _position(first)
    if last and _position(last) < start:
        return None  # last before first: not a range at all
    if start >= file.size:
        raise _unsatisfiable(file)
    return start, min(_position(last) + 1, file.size) if last else file.size


def _unsatisfiable(file: StoredFile) -> HTTPException:
    detail = f"The range asked for lies outside the file, which is {file.size} bytes long."
    return HTTPException(416, detail, headers={"Content-Range": f"bytes */{file.size}"})


async def send_file(store: ObjectStore, file: StoredFile, span: Span | None, *, presign: bool) -> Response:
    """The file's bytes, or ``span`` of them (from ``requested_span``)."""
    headers = _headers(file)
    if presign:
        url = await store.presigned_url(file.storage_key, filename=file.name, content_type=file.content_type)
        if url:
            return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
    return _bytes(store, file, span, media_type=file.content_type, headers=headers, counted=True)


def send_inline(
    store: ObjectStore, file: StoredFile, span: Span | None, *, media_type: str, headers: dict[str, str]
) -> Response:
    """The file's bytes (or ``span`` of them) to be shown rather than saved: a preview, with the same Range
    handling as a download, sent as ``media_type`` with the caller's ``headers``, and not counted as a download."""
    headers = {"ETag": f'"{file.sha256}"', "Accept-Ranges": "bytes", **headers}
    return _bytes(store, file, span, media_type=media_type, headers=headers, counted=False)


def _bytes(
    store: ObjectStore, file: StoredFile, span: Span | None, *, media_type: str, headers: dict[str, str], counted: bool
) -> Response:
    path = store.local_path(file.storage_key)
    if path is not None:
        return _LocalFile(path, span, media_type=media_type, headers=headers, counted=counted)
    start, end = span or (0, file.size)
    headers["Content-Length"] = str(end - start)
    if span:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{file.size}"
    body = store.get_stream(file.storage_key, start, end)
    response = _CountedStream(body, status_code=206 if span else 200, media_type=media_type, headers=headers)
    response.counted = counted
    return response


class _Sink(io.RawIOBase):
    """A write-only, unseekable buffer: zipfile then writes data descriptors and never seeks back."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def _unique_names(files: list[StoredFile]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for file in files:
        count = seen.get(file.name, 0)
        seen[file.name] = count + 1
        stem, dot, ext = file.name.rpartition(".")
        if count:
            names.append(f"{stem} ({count + 1}).{ext}" if dot else f"{file.name} ({count + 1})")
        else:
            names.append(file.name)
    return names


async def zip_stream(store: ObjectStore, files: list[StoredFile]) -> AsyncIterator[bytes]:
    """The files as one zip, stored without compression, produced as it is sent."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for file, name in zip(files, _unique_names(files), strict=True):
            info = zipfile.ZipInfo(name, date_time=_zip_time(file.created_at))
            info.file_size = file.size
            with archive.open(info, "w", force_zip64=file.size >= 2**31) as entry:
                async for chunk in store.get_stream(file.storage_key, 0, file.size):
                    entry.write(chunk)
                    if data := sink.take():
                        yield data
            if data := sink.take():
                yield data
    yield sink.take()  # the central directory


def _zip_time(moment: datetime) -> tuple[int, int, int, int, int, int]:
    return (max(moment.year, 1980), moment.month, moment.day, moment.hour, moment.minute, moment.second)


def send_zip(store: ObjectStore, files: list[StoredFile], name: str) -> StreamingResponse:
    headers = {
        "Content-Disposition": content_disposition(name),
        "Content-Security-Policy": DOWNLOAD_POLICY,
        "Cache-Control": "private, no-store",
    }
    return _CountedStream(zip_stream(store, files), media_type="application/zip", headers=headers)


async def send_thumbnail(store: ObjectStore, file: StoredFile) -> Response:
    """A preview we made ourselves (always WebP), cacheable by the browser that may see it."""
    if not file.thumbnail_key or file.scan_status == INFECTED:
        raise NotFound("This file has no preview.")  # problem+json, like every other 404
    data = b"".join([chunk async for chunk in store.get_stream(file.thumbnail_key)])
    return Response(data, media_type="image/webp", headers={"Cache-Control": "private, max-age=3600"})
