"""A process's life: how it starts, whether it has begun shutting down (factor IX), how it leaves.

Draining is set by the signal handlers of the web server and read by ``/readyz``, so a load balancer
stops sending traffic to a process that is draining.
"""

from __future__ import annotations

import gc
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


def defer_collection() -> None:
    """No cyclic garbage collection while a process that forks its workers loads its code.

    Loading a process type's stack makes hundreds of thousands of objects that live as long as the
    process; collection passes over them while they are imported are work thrown away (measured: about
    a sixth of the web application's import). ``share_with_forks`` turns collection back on.
    """
    gc.disable()


def share_with_forks() -> None:
    """Freeze what this process has loaded, then collect again, here and in the children forked from now on.

    Frozen objects are never visited by a collection, so a forked child does not write to their headers
    and copy the memory pages it shares with its parent. No collection first: the few cycles it would
    free are not worth a full pass over everything just imported.
    """
    gc.freeze()
    gc.enable()
