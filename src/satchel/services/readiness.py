"""Is this process ready for traffic? Every backing service answers, and it is not draining."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from satchel.ports.health import Probe, ServiceUnavailable

OK = "ok"

# Probes that overran: they finish in the background, bounded by their own guard's timeout.
_overrunning: set[asyncio.Task[None]] = set()


class Breaker(Protocol):
    """A circuit breaker as readiness reports it: ``closed``, ``open`` or ``half-open``."""

    @property
    def state(self) -> str: ...


@dataclass(frozen=True)
class Readiness:
    checks: dict[str, str]
    draining: bool
    breakers: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return not self.draining and all(result == OK for result in self.checks.values())

    @property
    def failing(self) -> list[str]:
        return [name for name, result in self.checks.items() if result != OK]


async def _check(probe: Probe, timeout: float) -> str:
    # Not cancelled when late: some drivers, cancelled, wait on the stalled server they were
    # asking, and /readyz would hang with them. A late probe is reported and left to end by itself.
    task = asyncio.ensure_future(probe.ping())
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        _overrunning.add(task)
        task.add_done_callback(_forget)
        return f"no answer within {timeout:g}s"
    try:
        task.result()
    except ServiceUnavailable as exc:
        return exc.reason
    except Exception as exc:  # any failure of a probe is a "not ready", never a crash
        return type(exc).__name__
    return OK


def _forget(task: asyncio.Task[None]) -> None:
    _overrunning.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved, so it is not reported as never retrieved


def _breaker_of(probe: Probe) -> Breaker | None:
    """The circuit breaker guarding the probed service, for the adapters that have one."""
    guard = getattr(probe, "guard", None)
    return guard if guard is not None and hasattr(guard, "state") else None


async def check_readiness(probes: Sequence[Probe], *, timeout: float, draining: Callable[[], bool]) -> Readiness:
    """Ask every backing service at once, each within ``timeout`` seconds; report each breaker's state too."""
    results = await asyncio.gather(*(_check(probe, timeout) for probe in probes))
    breakers = {p.name: breaker.state for p in probes if (breaker := _breaker_of(p)) is not None}
    # Read the draining flag last: a check that began before SIGTERM still reports the shutdown.
    return Readiness(
        checks={p.name: r for p, r in zip(probes, results, strict=True)}, draining=draining(), breakers=breakers
    )
