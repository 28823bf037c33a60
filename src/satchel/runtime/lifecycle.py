"""Whether this process has begun shutting down (factor IX).

Set by the signal handlers of the web server; read by ``/readyz`` so a load
balancer stops sending traffic to a process that is draining.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

_draining = threading.Event()


def begin_draining() -> None:
    _draining.set()


def is_draining() -> bool:
    return _draining.is_set()


def reset() -> None:
    """Back to serving; for a process that starts a fresh app in the same interpreter."""
    _draining.clear()


def exit_now(code: int) -> None:
    """Leave without interpreter teardown, once all output is flushed and every service is closed.

    The object-store client runs a Rust async runtime whose threads can race the interpreter's
    finalization and abort the process (SIGABRT) after all the work succeeded; a process must
    exit with the code it earned.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
