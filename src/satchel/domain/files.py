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


def human_size(size: int) -> str:
    """A size as the pages and mails show it: one unit system everywhere."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"
