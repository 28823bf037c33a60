"""multipart/form-data parsed as it streams in: each file part is an async iterator of its bytes.

Frameworks usually spool uploaded parts to a temporary file first; here each part's bytes go on to the object
store as they arrive, so memory stays flat and no temporary file exists at all. Whatever is wrong with the
body is the client's error (400), raised from inside the part being read, so that part's partial object is
removed like any failed upload's; a body that ends before its closing boundary is such an error.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import Enum, auto

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from satchel.domain.errors import DomainError

# RFC 2046 section 5.1.1: 1 to 70 of these characters, not ending in a space.
_BOUNDARY = re.compile(rb"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
# One header line of a part: room for any real file name (cleaned and shortened later), not for a flood.
MAX_PART_HEADER = 16 * 1024


class MalformedMultipart(DomainError):
    """The multipart/form-data body is malformed."""

    status = 400


@dataclass(frozen=True)
class FilePart:
    filename: str
    content_type: str | None
    chunks: AsyncIterator[bytes]


class _End(Enum):
    PART = auto()
    BODY = auto()


_Event = dict[bytes, bytes] | bytes | _End  # a part's headers, some of its bytes, or an end


class MultipartBody:
    """One multipart/form-data body, parsed as its chunks arrive."""

    def __init__(self, content_type: str, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._events: deque[_Event] = deque()
        self._headers: dict[bytes, bytes] = {}
        self._field = self._value = b""
        self._parser = MultipartParser(
            _boundary(content_type),
            callbacks={
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": lambda: self._events.append(_End.PART),
                "on_end": lambda: self._events.append(_End.BODY),
            },
            max_header_size=MAX_PART_HEADER,
        )

    async def files(self) -> AsyncIterator[FilePart]:
        """Each part named ``file`` that carries a file name, in order; other parts are read past."""
        while (event := await self._next()) is not _End.BODY:
            if isinstance(event, dict) and (part := self._file_part(event)):
                yield part
                async for _ in part.chunks:  # whatever the consumer left unread
                    pass

    def _file_part(self, headers: dict[bytes, bytes]) -> FilePart | None:
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        filename = disposition.get(b"filename")
        if disposition.get(b"name") != b"file" or filename is None:
            return None
        declared = headers.get(b"content-type", b"").decode("latin-1")
        # Only a plain header value may become the file's stored type; anything else is guessed from the name.
        content_type = declared if declared and declared.isascii() and declared.isprintable() else None
        return FilePart(filename.decode("utf-8", "replace"), content_type, self._part_data())

    async def _part_data(self) -> AsyncIterator[bytes]:
        while isinstance(event := await self._next(), bytes):
            yield event

    async def _next(self) -> _Event:
        while not self._events:
            chunk = await anext(self._chunks, None)
            if chunk is None:
                raise MalformedMultipart("The multipart body ended before its closing boundary.")
            try:
                self._parser.write(chunk)
            except FormParserError as exc:
                raise MalformedMultipart(f"The multipart body is malformed: {exc}") from None
        return self._events.popleft()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def _on_headers_finished(self) -> None:
        self._events.append(self._headers)
        self._headers = {}

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._events.append(bytes(data[start:end]))


def _boundary(content_type: str) -> bytes:
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise MalformedMultipart("The multipart body has no boundary.")
    if not _BOUNDARY.fullmatch(boundary):
        raise MalformedMultipart("The multipart boundary must be 1 to 70 letters, digits or '()+_,-./:=? (RFC 2046).")
    return boundary
