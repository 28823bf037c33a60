"""multipart/form-data parsed as it streams in: each file part is an async iterator of its bytes.

Frameworks usually spool uploaded parts to a temporary file first; here each
part's bytes go on to the object store as they arrive, so memory stays flat
and no temporary file exists at all.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from satchel.domain.errors import InvalidInput

Event = tuple[str, bytes]


async def stream_parts(request: Request) -> AsyncIterator[tuple[str, str | None, AsyncIterator[bytes]]]:
    """Yield (filename, content type, bytes) for each part that carries a file."""
    _, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if not boundary:
        raise InvalidInput("The multipart body has no boundary.")
    events: deque[Event] = deque()
    header: list[bytes] = [b"", b""]

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header[0] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header[1] += data[start:end]

    def on_header_end() -> None:
        events.append(("header", header[0].lower() + b"\x00" + header[1]))
        header[:] = [b"", b""]

    parser = MultipartParser(
        boundary,
        callbacks={
            "on_part_begin": lambda: events.append(("begin", b"")),
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": lambda: events.append(("headers", b"")),
            "on_part_data": lambda data, start, end: events.append(("data", bytes(data[start:end]))),
            "on_part_end": lambda: events.append(("end", b"")),
        },
    )
    body = request.stream().__aiter__()
    finished = False

    async def next_event() -> Event | None:
        nonlocal finished
        while not events and not finished:
            try:
                parser.write(await body.__anext__())
            except StopAsyncIteration:
                parser.finalize()
                finished = True
        return events.popleft() if events else None

    async def part_bytes() -> AsyncIterator[bytes]:
        while (event := await next_event()) is not None and event[0] == "data":
            yield event[1]

    headers: dict[bytes, bytes] = {}
    while (event := await next_event()) is not None:
        kind, value = event
        if kind == "begin":
            headers = {}
        elif kind == "header":
            name, _, content = value.partition(b"\x00")
            headers[name] = content
        elif kind == "headers":
            _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
            filename = disposition.get(b"filename")
            if disposition.get(b"name") == b"file" and filename is not None:
                content_type = headers.get(b"content-type", b"").decode("latin-1") or None
                chunks = part_bytes()
                yield filename.decode("utf-8", "replace"), content_type, chunks
                async for _ in chunks:  # whatever the consumer left unread
                    pass
            else:
                async for _ in part_bytes():  # not a file: skip its bytes
                    pass
