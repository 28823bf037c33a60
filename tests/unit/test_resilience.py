"""Guard: timeouts, a circuit breaker and a bulkhead around each backing service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
import structlog

from satchel.adapters.resilience import INTERRUPT_GRACE, Guard
from satchel.ports.health import ServiceUnavailable


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Operation:
    """An operation that counts its calls and fails with ``error`` while one is set."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return "answer"


def call(guard: Guard, operation: Operation) -> str:
    return asyncio.run(guard.call(operation))


def test_a_successful_call_returns_the_result() -> None:
    assert call(Guard("svc"), Operation()) == "answer"


def test_a_call_exceeding_its_timeout_raises_service_unavailable() -> None:
    async def hang() -> None:
        await asyncio.sleep(10)

    guard = Guard("svc", timeout=0.05)
    with pytest.raises(ServiceUnavailable) as caught:
        asyncio.run(guard.call(hang))
    assert caught.value.service == "svc"
    assert "0.05" in caught.value.reason


def test_an_outage_error_becomes_service_unavailable() -> None:
    with pytest.raises(ServiceUnavailable) as caught:
        call(Guard("svc"), Operation(ConnectionRefusedError()))
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


def test_the_circuit_opens_after_repeated_failures_and_then_fails_fast() -> None:
    guard = Guard("svc", failure_threshold=3, clock=FakeClock())
    operation = Operation(OSError("down"))
    for _ in range(3):
        with pytest.raises(ServiceUnavailable):
            call(guard, operation)
    assert guard.state == "open"

    with pytest.raises(ServiceUnavailable, match="circuit open"):
        call(guard, operation)
    assert operation.calls == 3  # the last call never reached the service


def test_after_reset_after_one_trial_call_is_let_through_and_success_closes_the_circuit() -> None:
    clock = FakeClock()
    guard = Guard("svc", failure_threshold=1, reset_after=5.0, clock=clock)
    operation = Operation(OSError("down"))
    with pytest.raises(ServiceUnavailable):
        call(guard, operation)
    clock.now += 4.9
    assert guard.state == "open"
    clock.now += 0.1
    assert guard.state == "half-open"

    operation.error = None
    assert call(guard, operation) == "answer"
    assert operation.calls == 2
    assert guard.state == "closed"


def test_a_failed_trial_call_opens_the_circuit_again() -> None:
    clock = FakeClock()
    guard = Guard("svc", failure_threshold=1, reset_after=5.0, clock=clock)
    operation = Operation(OSError("down"))
    with pytest.raises(ServiceUnavailable):
        call(guard, operation)
    clock.now += 5.0
    with pytest.raises(ServiceUnavailable):
        call(guard, operation)  # the trial
    assert operation.calls == 2
    assert guard.state == "open"


def test_only_one_trial_call_runs_while_half_open() -> None:
    clock = FakeClock()
    guard = Guard("svc", failure_threshold=1, reset_after=5.0, clock=clock)
    with pytest.raises(ServiceUnavailable):
        call(guard, Operation(OSError("down")))
    clock.now += 5.0

    async def scenario() -> None:
        release = asyncio.Event()

        async def slow_trial() -> str:
            await release.wait()
            return "answer"

        trial = asyncio.create_task(guard.call(slow_trial))
        await asyncio.sleep(0.01)
        with pytest.raises(ServiceUnavailable, match="trial call in progress"):
            await guard.call(Operation())
        release.set()
        assert await trial == "answer"

    asyncio.run(scenario())
    assert guard.state == "closed"


def test_a_non_outage_exception_propagates_unchanged_and_is_not_a_failure() -> None:
    guard = Guard("svc", failure_threshold=1, clock=FakeClock())
    error = ValueError("bad request")
    for _ in range(3):
        with pytest.raises(ValueError) as caught:
            call(guard, Operation(error))
        assert caught.value is error
    assert guard.state == "closed"
    assert call(guard, Operation()) == "answer"


def test_the_bulkhead_bounds_concurrent_calls() -> None:
    async def scenario() -> int:
        guard = Guard("svc", max_concurrent=2, timeout=5)
        running = peak = 0
        gate = asyncio.Event()

        async def operation() -> None:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await gate.wait()
            running -= 1

        tasks = [asyncio.create_task(guard.call(operation)) for _ in range(6)]
        await asyncio.sleep(0.05)
        assert running == 2  # the other four wait for a slot
        gate.set()
        await asyncio.gather(*tasks)
        return peak

    assert asyncio.run(scenario()) == 2


def test_a_full_bulkhead_refuses_without_opening_the_circuit() -> None:
    guard = Guard("slow", timeout=0.2, max_concurrent=1, failure_threshold=1)

    async def healthy_but_slow() -> str:
        await asyncio.sleep(0.15)
        return "done"

    async def scenario() -> tuple[object, object]:
        results = await asyncio.gather(
            guard.call(healthy_but_slow), guard.call(healthy_but_slow, timeout=0.05), return_exceptions=True
        )
        return results[0], results[1]

    first, second = asyncio.run(scenario())
    assert first == "done"
    assert isinstance(second, ServiceUnavailable) and "slots busy" in second.reason
    assert guard.state == "closed"


class StuckDriverCall:
    """A call like a database driver's on a stalled server: it waits forever for an answer and,
    when cancelled, first waits ``cancel_delay`` seconds more (asking the server to cancel);
    shutting its socket (the interrupt) makes it fail at once."""

    def __init__(self, cancel_delay: float = 10.0) -> None:
        self.cancel_delay = cancel_delay
        self.socket_shut = asyncio.Event()

    def shut_socket(self) -> bool:
        self.socket_shut.set()
        return True

    async def __call__(self) -> str:
        try:
            await self.socket_shut.wait()
        except asyncio.CancelledError:
            await asyncio.sleep(self.cancel_delay)
            raise
        raise ConnectionResetError("server closed the connection unexpectedly")


def elapsed(work: Callable[[], Awaitable[object]]) -> tuple[BaseException | None, float]:
    async def timed() -> tuple[BaseException | None, float]:
        started = time.monotonic()
        try:
            await work()
        except BaseException as exc:
            return exc, time.monotonic() - started
        return None, time.monotonic() - started

    return asyncio.run(timed())


def test_an_interrupted_call_fails_at_its_timeout_without_waiting_for_a_slow_cancellation() -> None:
    guard = Guard("db", timeout=0.2)
    stuck = StuckDriverCall()
    error, took = elapsed(lambda: guard.call(stuck, interrupt=stuck.shut_socket))
    assert isinstance(error, ServiceUnavailable)
    assert error.reason == "no answer within 0.2s"  # what the operator needs, not the driver's wording
    assert took < 0.5


def test_a_call_that_ignores_its_interrupt_is_cancelled_after_a_short_grace() -> None:
    guard = Guard("db", timeout=0.1)
    stuck = StuckDriverCall(cancel_delay=0)
    error, took = elapsed(lambda: guard.call(stuck, interrupt=lambda: True))
    assert isinstance(error, ServiceUnavailable) and "no answer" in error.reason
    assert 0.1 + INTERRUPT_GRACE - 0.05 < took < 0.1 + INTERRUPT_GRACE + 0.3


def test_when_there_is_nothing_to_interrupt_the_call_is_cancelled_at_its_timeout() -> None:
    guard = Guard("db", timeout=0.1)
    stuck = StuckDriverCall(cancel_delay=0)
    error, took = elapsed(lambda: guard.call(stuck, interrupt=lambda: False))
    assert isinstance(error, ServiceUnavailable)
    assert took < 0.1 + INTERRUPT_GRACE / 2


def test_a_failing_interrupt_does_not_stop_the_timeout() -> None:
    def broken() -> bool:
        raise RuntimeError("no socket")

    guard = Guard("db", timeout=0.1)
    error, took = elapsed(lambda: guard.call(StuckDriverCall(cancel_delay=0), interrupt=broken))
    assert isinstance(error, ServiceUnavailable)
    assert took < 0.4


def test_is_outage_decides_which_errors_are_the_services_fault() -> None:
    guard = Guard("db", failure_threshold=1, is_outage=lambda exc: "lost" in str(exc), clock=FakeClock())
    with pytest.raises(KeyError):
        call(guard, Operation(KeyError("bad input")))
    assert guard.state == "closed", "the service answered: the request was the problem"
    with pytest.raises(ServiceUnavailable):
        call(guard, Operation(RuntimeError("connection lost")))
    assert guard.state == "open"


def test_a_returning_service_is_tried_again_within_seconds() -> None:
    assert Guard("svc").reset_after <= 2, "recovery within 5 s needs the circuit to try again well before"


def test_opening_and_closing_the_circuit_are_logged_for_operators() -> None:
    clock = FakeClock()
    guard = Guard("redis", failure_threshold=2, reset_after=1.0, clock=clock)
    with structlog.testing.capture_logs() as events:
        for _ in range(3):
            with pytest.raises(ServiceUnavailable):
                call(guard, Operation(ConnectionRefusedError()))
        clock.now += 1.0
        call(guard, Operation())

    breaker_events = [e for e in events if e["event"].startswith("breaker.")]
    assert [e["event"] for e in breaker_events] == ["breaker.opened", "breaker.closed"], "once each, not per call"
    opened, closed = breaker_events
    assert opened["service"] == "redis" and opened["failures"] == 2
    assert opened["reason"] == "ConnectionRefusedError"
    assert opened["log_level"] == "warning"
    assert closed["service"] == "redis" and closed["failures"] >= 2
    assert closed["last_error"] == "ConnectionRefusedError"
