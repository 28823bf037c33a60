"""Files: what a user stored, its name, size, type and checksum."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from satchel.domain.errors import Conflict, Forbidden, InvalidInput

MAX_NAME = 255
_FILE_ID = re.compile(r"[0-9a-f]{32}")  # 128 random bits, as the Files service makes them


def is_file_id(value: str) -> bool:
    """Whether ``value`` could name a file at all; anything else is "no such file" without asking the database."""
    return _FILE_ID.fullmatch(value) is not None


def clean_file_name(raw: str) -> str:
    """A display name from user input: no folders, no control characters, not empty."""
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    # Control and format characters go, including right-to-left overrides that disguise extensions,
    # and lone surrogates, which no database or file system can store.
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf", "Cs")).strip()
    if name in ("", ".", ".."):
        raise InvalidInput("Give the file a name.")
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: MAX_NAME - len(ext) - 1] + dot + ext) if dot and len(ext) < 16 else name[:MAX_NAME]
    return name


class EmptyFile(InvalidInput):
    """The file is empty: there is nothing to store or share."""


class FileQuarantined(Forbidden):
    """This file was found to contain malware and is quarantined; it cannot be downloaded."""


class ScanPending(Conflict):
    """This file is still being checked for viruses; try again in a moment."""


UNSCANNED, PENDING, CLEAN, INFECTED, SCAN_FAILED = "unscanned", "pending", "clean", "infected", "failed"


@dataclass
class StoredFile:
    """A file's record. Its bytes live in object storage under ``storage_key``, never derived from its name."""

    id: str
    owner_id: int
    name: str
    size: int
    content_type: str
    sha256: str
    storage_key: str
    created_at: datetime
    scan_status: str = UNSCANNED
    thumbnail_key: str | None = None
    preview_type: str | None = None  # decided from the bytes (domain/previews.py); None: not looked at yet

    def ensure_downloadable(self, *, scan_required: bool) -> None:
        """Infected files never leave; with scanning required, only files found clean do."""
        if self.scan_status == INFECTED:
            raise FileQuarantined()
        if scan_required and self.scan_status != CLEAN:
            raise ScanPending()


# The one unit system pages, mails and commands show and take sizes in: binary, as quotas are set ("50 GiB").
SIZE_UNITS: dict[str, int] = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4}
_SIZE = re.compile(r"\s*([0-9]{1,15}(?:\.[0-9]{1,6})?)\s*([A-Za-z]{0,3})\s*")


def human_size(size: int) -> str:
    """A size as the pages and mails show it: one unit system everywhere ("50 GiB", "3.1 MiB", "12 B")."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f}".removesuffix(".0") + f" {unit}"
        value /= 1024
    return f"{size} B"


def parse_size(text: str) -> int:
    """A size typed with its unit (``100GiB``, ``1.5 TiB``, ``512 MiB``; no unit is bytes), in bytes."""
    match = _SIZE.fullmatch(text)
    units = {name.lower(): factor for name, factor in SIZE_UNITS.items()}
    if match is None or match.group(2).lower() not in {*units, ""}:
        raise InvalidInput("Give a size with a binary unit: B, KiB, MiB, GiB or TiB (like 100GiB).")
    number, unit = str(match.group(1)), str(match.group(2))
    whole, _, fraction = number.partition(".")
    factor = units.get(unit.lower(), 1)
    # Exact arithmetic on the digits typed: 1.1 GiB is 1181116006 bytes, not what a float makes of it.
    scale = int(10 ** len(fraction))
    return (int(whole) * scale + int(fraction or 0)) * factor // scale
