"""What a URL may carry: ids and numbers checked before any query is made with them.

A file id that cannot be one is "no such file" (404), as a missing file is; a number beyond what a
PostgreSQL bigint holds is invalid input (422) here, rather than a database error later.

The patterns here describe rules the domain keeps; they are for the OpenAPI document, so that a client
(or the API fuzzer) knows in advance which values are answered with 404 or 422.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import cache
from typing import Annotated, Any

from fastapi import Depends, Path, Query
from pydantic import BeforeValidator

from satchel.domain.errors import NotFound
from satchel.domain.files import is_file_id

BIGINT = 2**63 - 1  # the largest id, offset or count the database can hold
FILE_ID_PATTERN = "^[0-9a-f]{32}$"  # as domain.files.is_file_id


async def _file_id(
    file_id: Annotated[
        str, Path(description="a file's id: 32 lowercase hex digits", json_schema_extra={"pattern": FILE_ID_PATTERN})
    ],
) -> str:
    if not is_file_id(file_id):
        raise NotFound("No such file.")
    return file_id


FileId = Annotated[str, Depends(_file_id)]  # the route's path must name it {file_id}
RowId = Annotated[int, Path(ge=1, le=BIGINT)]
Offset = Annotated[int, Query(ge=0, le=BIGINT)]

_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")


def _date_time(value: object) -> object:
    # What the document promises (RFC 3339, a time zone included); pydantic alone would also take a bare
    # number as seconds since 1970, or a date without a time.
    if isinstance(value, str) and not _RFC3339.fullmatch(value):
        raise ValueError("not a date and time with its time zone, like 2026-12-05T14:30:00Z")
    return value


DateTime = Annotated[datetime, BeforeValidator(_date_time)]  # a query's date-time, in RFC 3339 alone


# domain.files.clean_file_name keeps the part after the last slash or backslash, drops control and
# format characters (and lone surrogates, which UTF-8 cannot carry), strips white space, and refuses
# what is left when it is empty, "." or "..".
_DROPPED = ("Cc", "Cf")


def character_class(belongs: Callable[[str], bool], last: int = sys.maxunicode) -> str:
    """A regex character class body of every character up to ``last`` that ``belongs``, as ranges."""
    return _class([code for code in range(last + 1) if belongs(chr(code))])


def refused_class(refused: Callable[[str], bool]) -> str:
    """A regex class body of the characters up to U+FFFF a rule refuses, surrogates left out: an engine reading
    UTF-16 units (ECMA 262 without the u flag) must still take a character beyond U+FFFF, which it reads as two
    surrogates. A lone surrogate, which no JSON text a client means to send holds, the rule itself refuses."""
    return character_class(lambda char: refused(char) and unicodedata.category(char) != "Cs", 0xFFFF)


@cache
def _dropped() -> tuple[str, str]:
    """Regex class bodies: the characters dropped from names, and those plus white space (once per process)."""
    dropped = [code for code in range(sys.maxunicode + 1) if unicodedata.category(chr(code)) in _DROPPED]
    spaces = [code for code in range(0x3001) if chr(code).isspace()]  # none lies beyond U+3000
    return _class(dropped), _class(sorted({*dropped, *spaces}))


def _class(codes: list[int]) -> str:
    parts: list[str] = []
    for start, end in _runs(codes):
        parts.append(_char(start) if start == end else f"{_char(start)}-{_char(end)}")
    return "".join(parts)


def _runs(codes: list[int]) -> Iterator[tuple[int, int]]:
    start = previous = codes[0]
    for code in codes[1:]:
        if code != previous + 1:
            yield start, previous
            start = code
        previous = code
    yield start, previous


def _char(code: int) -> str:
    # Escapes every regex dialect reads alike for the BMP; beyond it, the character itself (as JSON carries it).
    return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)


def file_name(schema: dict[str, Any]) -> None:
    """The JSON schema of a file name (as ``json_schema_extra``): something visible must be left of it."""
    dropped, blank = _dropped()
    nothing_left = f"[{blank}]*(?:\\.[{dropped}]*){{0,2}}[{blank}]*$"  # "", "." or ".." once cleaned
    schema["pattern"] = f"^(?!(?:[\\s\\S]*[/\\\\])?{nothing_left})[\\s\\S]+$"  # after the last folder


FILE_NAME_RULE = (
    "Folders (up to the last `/` or `\\`), control and format characters and surrounding white space are "
    "dropped; what is left must not be empty, `.` or `..`. Longer than 255 characters, it is shortened."
)
FileName = Annotated[
    str,
    Path(
        alias="file_id",
        title="Name",
        description=f"the new file's name. {FILE_NAME_RULE}",
        json_schema_extra=file_name,
    ),
]  # the route's path must name it {file_id:path}: PUT shares its path with the file's other operations
