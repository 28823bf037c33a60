"""Progress of long admin commands: a Rich bar for a person at a terminal, JSON events for everything else."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from satchel.runtime.logging import get_logger

log = get_logger("satchel.progress")


@contextmanager
def reporter(task: str) -> Iterator[Callable[[str, int, int], None]]:
    if sys.stdout.isatty():
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            ids: dict[str, int] = {}

            def show(stage: str, done: int, total: int) -> None:
                if stage not in ids:
                    ids[stage] = bar.add_task(f"{task}: {stage}", total=total)
                bar.update(ids[stage], completed=done)  # type: ignore[arg-type]

            yield show
        return
    last = [0.0]

    def emit(stage: str, done: int, total: int) -> None:
        # At most one event a second, and always the last one: logs stay readable on big stores.
        if done == total or time.monotonic() - last[0] >= 1:
            last[0] = time.monotonic()
            log.info("progress", task=task, stage=stage, done=done, total=total)

    yield emit
