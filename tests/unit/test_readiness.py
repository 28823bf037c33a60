"""Readiness: every backing service answers in time, and the process is not draining."""

from __future__ import annotations

import asyncio
import time

from satchel.ports.health import ServiceUnavailable
from satchel.services.readiness import OK, Readiness, check_readiness


class Healthy:
    def __init__(self, name: str, delay: float = 0.0) -> None:
        self.name = name
        self.delay = delay

    async def ping(self) -> None:
        await asyncio.sleep(self.delay)


class Failing:
    def __init__(self, name: str, error: Exception) -> None:
        self.name = name
        self.error = error

    async def ping(self) -> None:
        raise self.error


class Hanging:
    name = "hanging"

    async def ping(self) -> None:
        await asyncio.sleep(60)


def check(*probes: object, timeout: float = 1.0, draining: bool = False) -> Readiness:
    return asyncio.run(check_readiness(probes, timeout=timeout, draining=lambda: draining))  # type: ignore[arg-type]


def test_all_probes_ok_means_ready() -> None:
    result = check(Healthy("database"), Healthy("redis"))
    assert result.ready
    assert result.checks == {"database": OK, "redis": OK}
    assert result.failing == []


def test_a_probe_raising_service_unavailable_is_failing_with_its_reason() -> None:
    result = check(Healthy("database"), Failing("redis", ServiceUnavailable("redis", "circuit open")))
    assert not result.ready
    assert result.failing == ["redis"]
    assert result.checks == {"database": OK, "redis": "circuit open"}


def test_a_probe_raising_any_exception_is_failing_not_a_crash() -> None:
    result = check(Failing("storage", RuntimeError("boom")), Healthy("database"))
    assert result.failing == ["storage"]
    assert result.checks["storage"] == "RuntimeError"
    assert result.checks["database"] == OK


def test_a_probe_hanging_past_the_timeout_is_failing() -> None:
    result = check(Hanging(), Healthy("database"), timeout=0.1)
    assert result.failing == ["hanging"]
    assert result.checks["hanging"] == "no answer within 0.1s"
    assert result.checks["database"] == OK


def test_a_draining_process_is_not_ready_even_when_all_ok() -> None:
    result = check(Healthy("database"), draining=True)
    assert result.checks == {"database": OK}
    assert result.draining
    assert not result.ready


def test_checks_run_concurrently() -> None:
    started = time.monotonic()
    result = check(Healthy("a", 0.3), Healthy("b", 0.3), Healthy("c", 0.3), timeout=1.0)
    elapsed = time.monotonic() - started
    assert result.ready
    assert elapsed < 0.8, f"three 0.3s checks took {elapsed:.2f}s: they ran one after another"


class SlowToCancel:
    """A probe like a database driver's on a stalled server: it gives up by itself after ``gives_up_after``
    (its guard's timeout), but cancelled, it would first wait a long time more."""

    name = "database"

    def __init__(self, gives_up_after: float) -> None:
        self.gives_up_after = gives_up_after

    async def ping(self) -> None:
        try:
            await asyncio.sleep(self.gives_up_after)
        except asyncio.CancelledError:
            await asyncio.sleep(10)
            raise
        raise ServiceUnavailable("database", "no answer")


def test_a_probe_slow_to_cancel_fails_its_check_on_time() -> None:
    async def scenario() -> tuple[Readiness, float]:
        started = time.monotonic()
        result = await check_readiness([SlowToCancel(0.5), Healthy("redis")], timeout=0.1, draining=lambda: False)
        took = time.monotonic() - started
        await asyncio.sleep(0.6)  # the late probe ends by itself meanwhile
        return result, took

    result, took = asyncio.run(scenario())
    assert result.checks == {"database": "no answer within 0.1s", "redis": OK}
    assert took < 0.4, "readiness waited for the probe to give up"


class BreakerView:
    def __init__(self, state: str) -> None:
        self.state = state


class Guarded(Healthy):
    def __init__(self, name: str, state: str) -> None:
        super().__init__(name)
        self.guard = BreakerView(state)


def test_each_services_circuit_breaker_state_is_reported_alongside_its_check() -> None:
    result = check(
        Guarded("database", "closed"),
        Failing("redis", ServiceUnavailable("redis", "circuit open after repeated failures")),
        Healthy("storage"),
    )
    assert result.checks["redis"] == "circuit open after repeated failures"
    assert result.breakers == {"database": "closed"}, "services without a breaker are left out"
