"""Where the processes of one ``satchel web`` or ``satchel worker`` keep their samples.

Gunicorn's workers and Celery's pool are separate processes: each writes its samples to memory-mapped
files in one directory (prometheus_client's multiprocess mode), and whoever answers a scrape adds them up.
The library decides on its first import whether to write files, so the directory is named in the
environment before that; this module imports none of it at load time.

Unless the operator names one (``PROMETHEUS_MULTIPROC_DIR``), each process tree gets a fresh private
directory in memory (``/dev/shm``) or the temporary directory, never the working directory, and removes it
when it ends.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from satchel.runtime.logging import get_logger

ENV = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "satchel-metrics-"
SHM = Path("/dev/shm")  # noqa: S108 (memory, not disk: samples are written on every request)

log = get_logger("satchel.metrics")
_private: Path | None = None  # the directory this process tree made for itself, if it did


@contextmanager
def multiprocess_dir(*, enabled: bool) -> Iterator[Path | None]:
    """The directory every process started from this one writes its samples to, for the block's duration.

    Enter it before anything imports prometheus_client. Off (``enabled=False``): samples stay in each
    process's memory and nothing is written.
    """
    global _private
    if not enabled:
        yield None
        return
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before the metrics directory was chosen")
    if chosen := os.environ.get(ENV):  # the operator's: used as it is, and left behind
        path = Path(chosen)
        path.mkdir(parents=True, exist_ok=True)
        log.info("metrics.directory", directory=str(path), private=False)
        yield path
        return
    base = _base()
    _remove_abandoned(base)
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=base))  # empty, mode 0700
    owner, _private = os.getpid(), path
    os.environ[ENV] = str(path)
    log.info("metrics.directory", directory=str(path), private=True)
    try:
        yield path
    finally:
        if os.getpid() == owner:  # a forked child unwinding this stack must leave the directory to its parent
            shutil.rmtree(path, ignore_errors=True)
            os.environ.pop(ENV, None)
            _private = None


def _base() -> Path:
    if SHM.is_dir() and os.access(SHM, os.W_OK | os.X_OK):
        return SHM
    temp = Path(tempfile.gettempdir())
    if temp.resolve() == Path.cwd().resolve():  # gettempdir's last resort; an app directory is no place for this
        raise RuntimeError("no writable temporary directory for metrics: set TMPDIR or PROMETHEUS_MULTIPROC_DIR")
    return temp


def _remove_abandoned(base: Path) -> None:
    """Directories left by killed processes of this user: they would hold memory until the machine restarts.

    One named after this very process is abandoned too (this one has made none yet): a container's
    entrypoint is PID 1 in every life, and /dev/shm can outlive a restarted container.
    """
    for path in base.glob(f"{PREFIX}*"):
        pid = path.name.removeprefix(PREFIX).partition("-")[0]
        try:
            if not (pid.isdigit() and path.stat().st_uid == os.getuid()):
                continue
            if int(pid) == os.getpid() or not _alive(int(pid)):
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's
    return True


def forget_dead_processes() -> None:
    """Drop the live gauges of processes of this tree that died without saying so (SIGKILL, OOM).

    Only in a private directory: one the operator shares may hold processes this one cannot see.
    Their counters stay: a counter must never go backwards because a process died.
    """
    if _private is None or os.environ.get(ENV) != str(_private):
        return
    for file in _private.glob("gauge_live*.db"):
        pid = file.stem.rpartition("_")[2]
        if pid.isdigit() and not _alive(int(pid)):
            mark_dead(int(pid))


def mark_dead(pid: int) -> None:
    """A process of this tree ended: its live gauges go (its counters stay, so totals never go backwards)."""
    if path := os.environ.get(ENV):
        # By hand rather than the library's helper, which fails on a file another scrape or the
        # arbiter's child_exit removed a moment before: here that is the goal, not an error.
        for file in Path(path).glob(f"gauge_live*_{pid}.db"):
            file.unlink(missing_ok=True)
