"""Sending stored bytes: one file with Range support, several as a zip made on the fly.

Local files are handed to Starlette's FileResponse (sendfile-style, Range and
multi-range included); other stores stream in large blocks with single-range
support; S3 may instead redirect to a short-lived presigned URL. Memory stays
flat whatever the size: nothing is read whole.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import AsyncIterator
from datetime import datetime

from fastapi import Request
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from satchel.adapters.storage import content_disposition
from satchel.domain.files import INFECTED, StoredFile
from satchel.ports import ObjectStore
from satchel.web.security import DOWNLOAD_POLICY

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class _LocalFile(FileResponse):
    chunk_size = 1024 * 1024  # fewer, larger reads than the default 64 KiB


def _headers(file: StoredFile) -> dict[str, str]:
    return {
        "Content-Disposition": content_disposition(file.name),
        "ETag": f'"{file.sha256}"',
        "Content-Security-Policy": DOWNLOAD_POLICY,
        "Cache-Control": "private, no-store",
        "Accept-Ranges": "bytes",
    }


def _parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """(start, end exclusive), None for 'send it all', or 'unsatisfiable'."""
    match = _RANGE.match(header.strip())
    if not match:
        return None  # several ranges or another unit: RFC 9110 lets us send the whole file
    first, last = match.groups()
    if not first and not last:
        return "unsatisfiable"
    if not first:
        suffix = int(last)
        return (max(0, size - suffix), size) if suffix else "unsatisfiable"
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    if start >= size or start >= end:
        return "unsatisfiable"
    return start, end


async def send_file(request: Request, store: ObjectStore, file: StoredFile, *, presign: bool) -> Response:
    headers = _headers(file)
    if presign:
        url = await store.presigned_url(file.storage_key, filename=file.name, content_type=file.content_type)
        if url:
            return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
    path = store.local_path(file.storage_key)
    if path is not None:
        return _LocalFile(path, media_type=file.content_type, headers=headers)
    wanted = request.headers.get("range")
    span = None
    if wanted and request.headers.get("if-range", headers["ETag"]) == headers["ETag"]:
        span = _parse_range(wanted, file.size)
    if span == "unsatisfiable":
        return Response(status_code=416, headers={"Content-Range": f"bytes */{file.size}"})
    if isinstance(span, tuple):
        start, end = span
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{file.size}"
        headers["Content-Length"] = str(end - start)
        body = store.get_stream(file.storage_key, start, end)
        return StreamingResponse(body, status_code=206, media_type=file.content_type, headers=headers)
    headers["Content-Length"] = str(file.size)
    body = store.get_stream(file.storage_key, 0, file.size)
    return StreamingResponse(body, media_type=file.content_type, headers=headers)


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
    return StreamingResponse(zip_stream(store, files), media_type="application/zip", headers=headers)


async def send_thumbnail(store: ObjectStore, file: StoredFile) -> Response:
    """A preview we made ourselves (always WebP), cacheable by the browser that may see it."""
    if not file.thumbnail_key or file.scan_status == INFECTED:
        return Response(status_code=404)
    data = b"".join([chunk async for chunk in store.get_stream(file.thumbnail_key)])
    return Response(data, media_type="image/webp", headers={"Cache-Control": "private, max-age=3600"})
