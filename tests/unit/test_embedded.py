"""The embedded servers behind ``satchel dev`` and the tests: what they keep across a restart."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from satchel.runtime.embedded import EmbeddedRedis

pytestmark = pytest.mark.timeout(60)


@contextmanager
def _restarted(data_dir: Path, *, durable: bool, crash: bool) -> Iterator[redis.Redis]:
    """A Redis given one write, then stopped (or crashed) and started again on the same data."""
    first = EmbeddedRedis(data_dir, durable=durable)
    first.start()
    redis.Redis(first.host, first.port).set("session:abc", "signed in")
    if crash:
        first.kill()
    else:
        first.stop()
    again = EmbeddedRedis(data_dir, durable=durable)
    again.start()
    try:
        yield redis.Redis(again.host, again.port)
    finally:
        again.stop()


@pytest.mark.parametrize("crash", [False, True], ids=["stopped", "crashed"])
def test_durable_redis_keeps_its_data_through_a_stop_and_a_crash(tmp_path: Path, crash: bool) -> None:
    with _restarted(tmp_path / "redis", durable=True, crash=crash) as client:
        assert client.get("session:abc") == b"signed in"


def test_throwaway_redis_keeps_nothing_on_disk(tmp_path: Path) -> None:
    with _restarted(tmp_path / "redis", durable=False, crash=False) as client:
        assert client.get("session:abc") is None
    assert not [p.name for p in (tmp_path / "redis").iterdir() if p.name != "redis.pid"], "no snapshot, no log"
