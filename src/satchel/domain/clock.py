"""The one clock: every "now" in Satchel is UTC and comes from here, or from a clock passed in its place."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)
