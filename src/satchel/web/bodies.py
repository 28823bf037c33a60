"""Request bodies as streams that cannot hang: a body that stops arriving is cut (``SATCHEL_BODY_TIMEOUT``).

Every upload route reads its body through ``body_stream``. A client that goes away
mid-body surfaces as Starlette's ``ClientDisconnect``, which the edge logs as a
disconnect (499), never as a server error.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import Request

from satchel.domain.errors import DomainError


class BodyStalled(DomainError):
    """The request body stopped arriving; send it again."""

    status = 408


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
            yield chunk
