"""Real Satchel processes (``satchel web``, ``satchel worker``, …) under test, with their stdout."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx


class SatchelProcess:
    """``python -m satchel <args>`` with the given environment; stdout lines collected as they come."""

    def __init__(self, *args: str, env: dict[str, str], cwd: str | None = None, launcher: Sequence[str] = ()) -> None:
        self.args = args
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [*launcher, sys.executable, "-m", "satchel", *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.stderr_lines: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.stderr_lines), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def events(self) -> list[dict[str, Any]]:
        """Every stdout line, parsed as JSON (a line that is not JSON fails the test)."""
        return [json.loads(line) for line in self.lines if line.strip()]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.process.poll() is not None:
                raise AssertionError(f"{self.args} exited ({self.process.returncode}) before {what}:\n{self.output()}")
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}:\n{self.output()}")

    def wait_for_event(self, event: str, timeout: float = 30) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def seen() -> bool:
            found[:] = [e for e in self.events_so_far() if e.get("event") == event]
            return bool(found)

        self.wait_for(seen, timeout, f"log event {event}")
        return found[0]

    def events_so_far(self) -> list[dict[str, Any]]:
        parsed = []
        for line in list(self.lines):
            try:
                parsed.append(json.loads(line))
            except ValueError:
                continue
        return parsed

    def wait_http(self, url: str, timeout: float = 30) -> None:
        def answers() -> bool:
            try:
                return httpx.get(url, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        self.wait_for(answers, timeout, f"200 from {url}")

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        code = self.process.wait(timeout)
        for reader in self._readers:
            reader.join(5)
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        return "\n".join([*self.lines[-40:], "--- stderr ---", *self.stderr_lines[-40:]])


def run_satchel(
    *args: str, env: dict[str, str], cwd: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "satchel", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def create_account(
    env: dict[str, str], email: str, password: str = "correct horse battery staple", *, admin: bool = False
) -> str:
    """An account made with the admin commands, as an operator would (an administrator's with ``admin``);
    returns a new API token."""
    command = [sys.executable, "-m", "satchel", "users", "create", email, "--password-stdin", *(["--admin"] * admin)]
    created = subprocess.run(command, input=password + "\n", env=env, capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    token = run_satchel("tokens", "create", email, env=env)
    assert token.returncode == 0, token.stderr
    return token.stdout.strip()


@contextmanager
def running_web(env: dict[str, str], *, ready: str = "/healthz") -> Iterator[tuple[SatchelProcess, str]]:
    """``satchel web`` on ``env``'s PORT, answering 200 on ``ready`` before the block runs; stopped after it."""
    process = SatchelProcess("web", env=env)
    url = f"http://127.0.0.1:{env['PORT']}"
    try:
        process.wait_http(f"{url}{ready}")
        yield process, url
    finally:
        process.stop()
