"""Peak resident memory of a process's children, sampled while something runs."""

from __future__ import annotations

import threading

import psutil


class PeakRss:
    """Samples the resident memory of a process's children (e.g. web workers) until the block ends."""

    def __init__(self, pid: int, every: float = 0.02) -> None:
        self.parent = psutil.Process(pid)
        self.peak = 0
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self._every):
            for child in self.parent.children(recursive=True):
                try:
                    self.peak = max(self.peak, child.memory_info().rss)
                except psutil.Error:
                    continue

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
