"""Resumable uploads: a file arriving in pieces, possibly through many processes, until it is whole.

The protocol is tus 1.0 at the edge; here it is only what the domain needs: an
upload knows its length, how many bytes are safely stored (its offset), when it
is abandoned, which file it became, and the upload link it comes in by, if any.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from satchel.domain.errors import Conflict, DomainError, Gone, NotFound, TooLarge
from satchel.domain.requests import UploadRequest

CHECKSUM_ALGORITHMS = ("sha1", "sha256", "md5")


class UploadNotFound(NotFound):
    """There is no such upload."""


class UploadExpired(Gone):
    """This upload was abandoned for too long and has been removed; start it again."""


class UploadBusy(DomainError):
    """Another request is writing to this upload right now; ask for its offset and try again."""

    status = 423


class OffsetMismatch(Conflict):
    """The upload is not at that offset."""

    def __init__(self, expected: int) -> None:
        super().__init__(f"The upload is at byte {expected}; send the bytes from there.")
        self.expected = expected


class UploadOverrun(TooLarge):
    """More bytes than the upload's declared length."""


class BadChecksum(DomainError):
    """The checksum header is not one this server understands."""

    status = 400  # what the protocol prescribes for an algorithm it does not support


class ChecksumMismatch(DomainError):
    """The bytes received do not match their checksum; nothing of this request was kept."""

    status = 460


@dataclass(frozen=True)
class Checksum:
    """A client's checksum of the bytes of one request (tus checksum extension)."""

    algorithm: str
    digest: bytes

    @classmethod
    def parse(cls, header: str) -> Checksum:
        algorithm, _, encoded = header.strip().partition(" ")
        if algorithm not in CHECKSUM_ALGORITHMS:
            raise BadChecksum(f"Checksums may use {', '.join(CHECKSUM_ALGORITHMS)}.")
        try:
            digest = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise BadChecksum("The checksum is not valid base64.") from None
        if len(digest) != hashlib.new(algorithm).digest_size:
            raise BadChecksum(f"That is not the length of a {algorithm} digest.")
        return cls(algorithm, digest)

    def matches(self, digest: bytes) -> bool:
        return hmac.compare_digest(self.digest, digest)


@dataclass
class Upload:
    """The resumable-upload aggregate. Its invariant: 0 <= offset <= length, and bytes up to offset are stored."""

    id: str
    owner_id: int
    length: int
    offset: int
    name: str
    content_type: str | None
    storage_key: str  # where the finished file will live; generated, never derived from the name
    staging: dict[str, Any] = field(repr=False)  # the object store's record of the staged bytes
    created_at: datetime
    expires_at: datetime
    file_id: str | None = None
    request_id: int | None = None  # the upload link it comes in by; None: the owner's own upload

    @property
    def finished(self) -> bool:
        """Recorded as a file: nothing more to do but tell the client."""
        return self.file_id is not None

    @property
    def received(self) -> bool:
        """Every byte is stored; the upload only waits to become a file."""
        return self.offset == self.length

    def ensure_reached(self, owner_id: int, request_id: int | None = None) -> None:
        """Only the way it came in reaches an upload: its owner's own API (``request_id`` None) for the owner's
        uploads, that one link for an upload that comes in through a link. Any other answers like a missing one."""
        if self.owner_id != owner_id or self.request_id != request_id:
            raise UploadNotFound()

    def ensure_alive(self, now: datetime) -> None:
        if not self.finished and now >= self.expires_at:
            raise UploadExpired()

    def abandoned(self, now: datetime, link: UploadRequest | None = None) -> bool:
        """Nobody will finish it: idle past its expiry, or, unfinished, its link will no longer take it."""
        if now >= self.expires_at:
            return True
        return not self.finished and link is not None and not link.can_take(now, self.length)

    def room_at(self, offset: int, declared: int | None) -> int:
        """How many bytes a request starting at ``offset`` may carry; refuses a wrong offset or an overrun."""
        if offset != self.offset or self.finished:
            raise OffsetMismatch(self.offset)
        room = self.length - self.offset
        if declared is not None and declared > room:
            raise UploadOverrun(f"The upload has {room} bytes left; this request carries {declared}.")
        return room
