"""Guard: timeouts, a circuit breaker and a bulkhead around each backing service."""

from __future__ import annotations

import asyncio

import pytest

from satchel.adapters.resilience import Guard
from satchel.ports import ServiceUnavailable


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
