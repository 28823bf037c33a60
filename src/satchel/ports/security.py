"""Passwords, server-side sessions and rate limits."""

from __future__ import annotations

from typing import Any, Protocol

from satchel.ports.health import Probe


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...
    async def verify(self, password_hash: str, password: str) -> bool: ...


class SessionStore(Probe, Protocol):
    """Server-side sessions: the browser holds only a random id."""

    async def load(self, session_id: str) -> dict[str, Any] | None: ...
    async def save(self, session_id: str, data: dict[str, Any]) -> None: ...
    async def delete(self, session_id: str) -> None: ...


class RateLimiter(Protocol):
    async def hit(self, key: str, *, limit: int, window: int) -> int:
        """Count one attempt; return 0 if allowed, else the seconds until the next is."""
