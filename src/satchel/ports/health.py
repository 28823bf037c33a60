"""What every backing service answers to: a health probe, and the error an outage becomes."""

from __future__ import annotations

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
