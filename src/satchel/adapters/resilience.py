"""Timeouts, bulkheads and circuit breakers for calls to backing services.

Every adapter routes its calls through a ``Guard``: a call that takes too long
is abandoned, a service that keeps failing is not called again until it had time
to recover (circuit breaker), and one slow service cannot take every request
slot of the process with it (bulkhead: bounded concurrent calls).

Some drivers cannot be cancelled promptly: cancelling a query of the PostgreSQL
driver makes it ask the server to cancel and wait for the answer, which never
comes from a stalled server. Such calls pass an ``interrupt``: when the time is
up the guard calls it first (the adapter shuts the call's socket, so the driver
fails by itself at once) and cancels only as a backstop.

Each breaker's state is also a metric, ``satchel_breaker_open{service}``, set when it changes (a scrape
may be answered by another process, which cannot ask this one's breakers).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from satchel.ports.health import ServiceUnavailable
from satchel.runtime.logging import get_logger
from satchel.runtime.metrics.instruments import breaker_open

T = TypeVar("T")

State = Literal["closed", "open", "half-open"]

INTERRUPT_GRACE = 0.5  # seconds an interrupted call gets to fail by itself before it is cancelled
RESET_AFTER = 2.0  # seconds an open circuit waits before one trial call: a returning service is used again soon
RETRY_AFTER = 5  # seconds clients are told to wait on a 503: past a reset, about what a restart takes

log = get_logger(__name__)


@dataclass
class Guard:
    """Timeout + circuit breaker + bulkhead around one backing service.

    A guard belongs to one process and one event loop (its semaphore binds to the loop).
    ``is_outage`` decides which errors mean "the service is failing" (they count against
    the breaker and become ServiceUnavailable); it defaults to ``outage_errors``. Any other
    error means the service answered and the request was the problem: it passes unchanged.
    """

    service: str
    timeout: float = 5.0
    max_concurrent: int = 64
    failure_threshold: int = 5
    reset_after: float = RESET_AFTER
    outage_errors: tuple[type[Exception], ...] = (OSError, ConnectionError)
    is_outage: Callable[[Exception], bool] | None = None
    clock: Callable[[], float] = time.monotonic
    _failures: int = field(default=0, init=False)
    _opened_at: float | None = field(default=None, init=False)  # last (re)opening: the reset period counts from it
    _opened_since: float = field(default=0.0, init=False)  # first opening of this outage
    _trial_running: bool = field(default=False, init=False)
    _last_reason: str = field(default="", init=False)
    _slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.max_concurrent)
        breaker_open(self.service, False)  # the series exists from the start, not from the first outage

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if self.clock() - self._opened_at >= self.reset_after:
            return "half-open"
        return "open"

    async def call(
        self,
        operation: Callable[[], Awaitable[T]],
        *,
        timeout: float | None = None,
        interrupt: Callable[[], bool] | None = None,
    ) -> T:
        """Run ``operation`` under this guard, raising ServiceUnavailable if it cannot.

        ``interrupt`` is called when the time is up; it returns True when it made the
        operation fail on its own, and then the operation is cancelled only if it has
        not ended ``INTERRUPT_GRACE`` seconds later.
        """
        limit = self.timeout if timeout is None else timeout
        trial = await self._enter(limit)
        try:
            result = await self._within(limit, operation, interrupt)
        except TimeoutError:
            raise self._failed(f"no answer within {limit:g}s") from None
        except ServiceUnavailable as exc:
            self._record_failure(exc.reason)
            raise
        except Exception as exc:
            if self._outage(exc):
                raise self._failed(type(exc).__name__) from exc
            self._record_success()  # the service answered; the request was the problem
            raise
        finally:
            self._leave(trial)
        self._record_success()
        return result

    async def _enter(self, limit: float) -> bool:
        """Pass the breaker and take a bulkhead slot; True when this call is the half-open circuit's trial."""
        trial = self._admit()
        try:
            await self._take_slot(limit)
        except BaseException:
            if trial:
                self._trial_running = False
            raise
        return trial

    def _leave(self, trial: bool) -> None:
        self._slots.release()
        if trial:
            self._trial_running = False

    @staticmethod
    async def _within(limit: float, operation: Callable[[], Awaitable[T]], interrupt: Callable[[], bool] | None) -> T:
        """``operation``'s result, or TimeoutError after ``limit`` seconds, interrupting it first if it can be."""
        timed_out = False
        async with asyncio.timeout(None) as deadline:
            loop = asyncio.get_running_loop()

            def time_up() -> None:
                nonlocal timed_out
                timed_out = True
                interrupted = interrupt is not None and _safely(interrupt)
                deadline.reschedule(loop.time() + (INTERRUPT_GRACE if interrupted else 0))

            timer = loop.call_later(limit, time_up)
            try:
                return await operation()
            except ServiceUnavailable:
                raise
            except Exception:
                if timed_out:  # the interrupt made it fail: that is the timeout, whatever the driver says
                    raise TimeoutError from None
                raise
            finally:
                timer.cancel()

    def _outage(self, exc: Exception) -> bool:
        if self.is_outage is not None:
            return self.is_outage(exc)
        return isinstance(exc, self.outage_errors)

    def _failed(self, reason: str) -> ServiceUnavailable:
        self._record_failure(reason)
        return ServiceUnavailable(self.service, reason)

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

    def _record_failure(self, reason: str) -> None:
        self._failures += 1
        self._last_reason = reason
        if self._opened_at is not None:  # a failed trial: stay open for another reset period
            self._opened_at = self.clock()
        elif self._failures >= self.failure_threshold:
            self._opened_at = self._opened_since = self.clock()
            breaker_open(self.service, True)
            log.warning("breaker.opened", service=self.service, reason=reason, failures=self._failures)

    def _record_success(self) -> None:
        if self._opened_at is not None:
            log.info(
                "breaker.closed",
                service=self.service,
                reason="a trial call succeeded",
                failures=self._failures,
                last_error=self._last_reason,
                open_for=round(self.clock() - self._opened_since, 1),
            )
            breaker_open(self.service, False)
        self._failures = 0
        self._opened_at = None


def _safely(interrupt: Callable[[], bool]) -> bool:
    """Run an interrupt from a timer callback, where an exception would only be printed."""
    try:
        return interrupt()
    except Exception as exc:
        log.warning("guard.interrupt_failed", error=type(exc).__name__)
        return False
