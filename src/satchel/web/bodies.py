"""Request bodies as streams that cannot hang: a body that stops arriving is cut (``SATCHEL_BODY_TIMEOUT``).

Every upload route reads its body through ``body_stream``, so it is also where upload bytes are
counted (``satchel_upload_bytes_total``), as they arrive. A client that goes away mid-body surfaces
as Starlette's ``ClientDisconnect``, which the edge logs as a disconnect (499), never as a server error.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import Request

from satchel.domain.errors import DomainError, TooLarge
from satchel.domain.uploads import Checksum
from satchel.runtime.metrics.instruments import UPLOAD_BYTES
from satchel.services.uploads import Body


class BodyStalled(DomainError):
    """The request body stopped arriving; send it again."""

    status = 408


def declared_size(request: Request) -> int | None:
    """The body's size by its Content-Length, when it has a usable one."""
    length = request.headers.get("content-length", "")
    if not (length.isascii() and length.isdigit()):
        return None
    # Beyond any limit once past 18 digits; int() of thousands of digits would be refused anyway.
    return int(length) if len(length) <= 18 else 10**18


def tus_body(request: Request, timeout: float, checksum: Checksum | None) -> Body:
    """A resumable upload request's bytes as they stream in, with their declared size and checksum."""
    return Body(body_stream(request, timeout), size=declared_size(request), checksum=checksum)


async def body_stream(request: Request, timeout: float) -> AsyncIterator[bytes]:
    """The request body's chunks, each of which must arrive within ``timeout`` seconds."""
    chunks = request.stream().__aiter__()
    while True:
        try:
            async with asyncio.timeout(timeout):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise BodyStalled(f"No part of the request body arrived for {timeout:g} seconds.") from None
        if chunk:
            UPLOAD_BYTES.inc(len(chunk))
            yield chunk


async def read_body(request: Request, timeout: float, limit: int, error: TooLarge) -> bytes:
    """The whole request body, refused with ``error`` as soon as it runs past ``limit`` bytes."""
    kept = bytearray()
    async for chunk in body_stream(request, timeout):
        kept += chunk
        if len(kept) > limit:
            raise error
    return bytes(kept)
