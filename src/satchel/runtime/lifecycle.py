"""Whether this process has begun shutting down (factor IX).

Set by the signal handlers of the web server; read by ``/readyz`` so a load
balancer stops sending traffic to a process that is draining.
"""

from __future__ import annotations

import threading

_draining = threading.Event()


def begin_draining() -> None:
    _draining.set()


def is_draining() -> bool:
    return _draining.is_set()


def reset() -> None:
    """Back to serving; for a process that starts a fresh app in the same interpreter."""
    _draining.clear()
