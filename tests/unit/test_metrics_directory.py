"""The multiprocess metrics directory: what is cleared, and when, without ever failing a scrape."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from satchel.runtime.metrics import directory


def test_a_directory_named_after_this_process_is_left_from_an_earlier_life_and_removed(tmp_path: Path) -> None:
    # A container's entrypoint is PID 1 each time it starts; /dev/shm may outlive the restart.
    earlier_life = tmp_path / f"{directory.PREFIX}{os.getpid()}-abc"
    earlier_life.mkdir()
    living = tmp_path / f"{directory.PREFIX}{os.getppid()}-def"
    living.mkdir()
    directory._remove_abandoned(tmp_path)
    assert not earlier_life.exists()
    assert living.exists(), "a directory of a process that still runs is its own"


def test_forgetting_a_dead_process_twice_is_harmless(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two scrapes, or a scrape and the arbiter's child_exit, may forget the same process at once.
    monkeypatch.setenv(directory.ENV, str(tmp_path))
    (tmp_path / "gauge_livemax_4242.db").write_bytes(b"")
    (tmp_path / "counter_4242.db").write_bytes(b"")
    directory.mark_dead(4242)
    directory.mark_dead(4242)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_4242.db"], "counters stay: totals never go back"
