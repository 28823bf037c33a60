"""Is this process ready for traffic? Every backing service answers, and it is not draining."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from satchel.ports import Probe, ServiceUnavailable

OK = "ok"


@dataclass(frozen=True)
class Readiness:
    checks: dict[str, str]
    draining: bool

    @property
    def ready(self) -> bool:
        return not self.draining and all(result == OK for result in self.checks.values())

    @property
    def failing(self) -> list[str]:
        return [name for name, result in self.checks.items() if result != OK]


async def _check(probe: Probe, timeout: float) -> str:
    try:
        async with asyncio.timeout(timeout):
            await probe.ping()
    except TimeoutError:
        return f"no answer within {timeout:g}s"
    except ServiceUnavailable as exc:
        return exc.reason
    except Exception as exc:  # any failure of a probe is a "not ready", never a crash
        return type(exc).__name__
    return OK


async def check_readiness(probes: Sequence[Probe], *, timeout: float, draining: Callable[[], bool]) -> Readiness:
    """Ask every backing service at once, each within ``timeout`` seconds."""
    results = await asyncio.gather(*(_check(probe, timeout) for probe in probes))
    # Read the draining flag last: a check that began before SIGTERM still reports the shutdown.
    return Readiness(checks={p.name: r for p, r in zip(probes, results, strict=True)}, draining=draining())
