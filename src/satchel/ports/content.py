"""What is learned from a file's bytes: malware, and a preview image."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol


class Scanner(Protocol):
    async def scan(self, chunks: AsyncIterator[bytes]) -> str | None:
        """The name of the malware found in the stream, or None when it is clean."""


class Thumbnailer(Protocol):
    async def thumbnail(self, data: bytes) -> bytes | None:
        """A small WebP preview of an image, or None when the bytes are not a usable image."""
