"""ClamAV (factor IV): clamd's INSTREAM command over TCP, fed from the object store as it streams."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from satchel.ports.health import ServiceUnavailable

CHUNK = 64 * 1024


class ClamdScanner:
    name = "clamav"

    def __init__(self, url: str, *, timeout: float = 120.0) -> None:
        parts = urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 3310
        self._timeout = timeout

    async def _command(self, command: bytes, chunks: AsyncIterator[bytes] | None = None) -> str:
        try:
            async with asyncio.timeout(self._timeout):
                reader, writer = await asyncio.open_connection(self._host, self._port)
                try:
                    writer.write(b"z" + command + b"\0")
                    if chunks is not None:
                        async for block in chunks:
                            for start in range(0, len(block), CHUNK):
                                piece = block[start : start + CHUNK]
                                writer.write(struct.pack("!L", len(piece)) + piece)
                                await writer.drain()
                        writer.write(struct.pack("!L", 0))
                    await writer.drain()
                    reply = await reader.readuntil(b"\0")
                finally:
                    writer.close()
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            raise ServiceUnavailable("clamav", type(exc).__name__) from exc
        return reply.rstrip(b"\0").decode("utf-8", "replace")

    async def ping(self) -> None:
        if await self._command(b"PING") != "PONG":
            raise ServiceUnavailable("clamav", "unexpected answer to PING")

    async def scan(self, chunks: AsyncIterator[bytes]) -> str | None:
        reply = await self._command(b"INSTREAM", chunks)
        # "stream: OK", "stream: <signature> FOUND", or "... ERROR" (e.g. size limit exceeded)
        if reply.endswith(" FOUND"):
            return reply.removeprefix("stream: ").removesuffix(" FOUND")
        if reply.endswith("OK"):
            return None
        raise ServiceUnavailable("clamav", reply)
