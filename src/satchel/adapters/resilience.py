"""Timeouts, bulkheads and circuit breakers for calls to backing services.

Every adapter routes its calls through a ``Guard``: a call that takes too long
is abandoned, a service that keeps failing is not called again until it had time
to recover (circuit breaker), and one slow service cannot take every request
slot of the process with it (bulkhead: bounded concurrent calls).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from satchel.ports import ServiceUnavailable

T = TypeVar("T")

State = Literal["closed", "open", "half-open"]


@dataclass
class Guard:
    """Timeout + circuit breaker + bulkhead around one backing service.

    A guard belongs to one process and one event loop (its semaphore binds to the loop).
    """

    service: str
    timeout: float = 5.0
    max_concurrent: int = 64
    failure_threshold: int = 5
    reset_after: float = 5.0
    outage_errors: tuple[type[Exception], ...] = (OSError, ConnectionError)
    clock: Callable[[], float] = time.monotonic
    _failures: int = field(default=0, init=False)
    _opened_at: float | None = field(default=None, init=False)
    _trial_running: bool = field(default=False, init=False)
    _slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.max_concurrent)

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if self.clock() - self._opened_at >= self.reset_after:
            return "half-open"
        return "open"

    async def call(self, operation: Callable[[], Awaitable[T]], *, timeout: float | None = None) -> T:
        """Run ``operation`` under this guard, raising ServiceUnavailable if it cannot."""
        limit = self.timeout if timeout is None else timeout
        trial = self._admit()
        try:
            await self._take_slot(limit)
        except BaseException:
            if trial:
                self._trial_running = False
            raise
        try:
            async with asyncio.timeout(limit):
                result = await operation()
        except TimeoutError:
            self._record_failure()
            raise ServiceUnavailable(self.service, f"no answer within {limit:g}s") from None
        except ServiceUnavailable:
            self._record_failure()
            raise
        except Exception as exc:
            if isinstance(exc, self.outage_errors):
                self._record_failure()
                raise ServiceUnavailable(self.service, type(exc).__name__) from exc
            self._record_success()  # the service answered; the request was the problem
            raise
        finally:
            self._slots.release()
            if trial:
                self._trial_running = False
        self._record_success()
        return result

    async def _take_slot(self, limit: float) -> None:
        """Wait for a free slot; a full bulkhead is load on us, not a failure of the service."""
        try:
            async with asyncio.timeout(limit):
                await self._slots.acquire()
        except TimeoutError:
            raise ServiceUnavailable(self.service, f"all {self.max_concurrent} slots busy") from None

    def _admit(self) -> bool:
        state = self.state
        if state == "open":
            raise ServiceUnavailable(self.service, "circuit open after repeated failures")
        if state == "half-open":
            if self._trial_running:
                raise ServiceUnavailable(self.service, "circuit half-open, trial call in progress")
            self._trial_running = True
            return True
        return False

    def _record_failure(self) -> None:
        self._failures += 1
        if self._failures >= self.failure_threshold or self._opened_at is not None:
            self._opened_at = self.clock()

    def _record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
