"""Thumbnails with Pillow, guarded against decompression bombs, off the event loop.

Pillow is imported on the first thumbnail, not with this module: only the worker's media jobs make
thumbnails, and every other process builds this adapter without ever using it.
"""

from __future__ import annotations

import asyncio
import io
import warnings

MAX_PIXELS = 40_000_000  # a 40-megapixel ceiling: bigger images are refused before they are decoded
SIZE = (320, 320)


def _thumbnail(data: bytes) -> bytes | None:
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > MAX_PIXELS:
                    return None
                image.draft("RGB", SIZE)  # JPEG: decode at a reduced scale, far less memory
                image.thumbnail(SIZE)
                out = io.BytesIO()
                image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB").save(out, "WEBP", quality=80)
                return out.getvalue()
        except (OSError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning):
            return None


class PillowThumbnailer:
    async def thumbnail(self, data: bytes) -> bytes | None:
        return await asyncio.to_thread(_thumbnail, data)
