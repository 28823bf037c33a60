"""Files: what a user stored, its name, size, type and checksum."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from satchel.domain.errors import InvalidInput

MAX_NAME = 255


def clean_file_name(raw: str) -> str:
    """A display name from user input: no folders, no control characters, not empty."""
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    # Control and format characters go, including right-to-left overrides that disguise extensions.
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf")).strip()
    if name in ("", ".", ".."):
        raise InvalidInput("Give the file a name.")
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: MAX_NAME - len(ext) - 1] + dot + ext) if dot and len(ext) < 16 else name[:MAX_NAME]
    return name


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
