"""The small protocols through which services reach the outside world.

Services depend on these, never on an adapter; ``bootstrap`` decides which
adapter stands behind each one, from the URL in the settings (factor IV).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol


class ServiceUnavailable(Exception):
    """A backing service did not answer in time, is failing, or is saturated."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason


class Probe(Protocol):
    """Something whose health can be asked with one cheap round trip."""

    name: str

    async def ping(self) -> None:
        """Return when the service answered; raise when it did not."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int


class ObjectStore(Probe, Protocol):
    """Where file bytes live: a local folder, S3, or memory."""

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes]) -> StoredObject:
        """Store the chunks under ``key`` without holding them all in memory."""

    def get_stream(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Yield the object's bytes ``[start, end)`` in large chunks."""

    async def head(self, key: str) -> StoredObject | None:
        """The object's size, or None when there is no such object."""

    async def delete(self, key: str) -> None:
        """Remove the object; removing a missing object is not an error."""


@dataclass(frozen=True)
class Message:
    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Mailer(Protocol):
    def send(self, message: Message) -> None:
        """Hand the message to the mail service, raising if it was refused."""


class JobPublisher(Protocol):
    def publish(self, task: str, *, queue: str, job_id: str, kwargs: dict[str, object]) -> None:
        """Hand a job to the broker for the worker tier."""
