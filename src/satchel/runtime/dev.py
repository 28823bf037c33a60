"""``satchel dev``: the whole service on one machine, for a person to try (factor X).

Starts real PostgreSQL and Redis from wheels under ``.satchel/`` (unless their URLs
are already set), applies migrations, runs the ``web`` and ``worker`` process types
as child processes exactly as production runs them, and prints the URL. Ctrl-C
stops everything in order; the next run reuses the data.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType

from satchel.runtime.embedded import EmbeddedPostgres, EmbeddedRedis
from satchel.settings import process_environment

DATA_DIR = Path(".satchel")


def _secret_key(data_dir: Path) -> str:
    """A key generated once per data folder, so sessions survive restarts of dev mode."""
    path = data_dir / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _wait_healthy(
    url: str, processes: list[subprocess.Popen[bytes]], stopping: Callable[[], bool], timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stopping():
        if any(p.poll() is not None for p in processes):
            raise RuntimeError("a Satchel process exited during start-up; its log lines above say why")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:  # noqa: S310 (our own http URL)
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    if stopping():
        return
    raise RuntimeError(f"Satchel did not answer on {url} within {timeout:g}s")


class Supervisor:
    """Runs Satchel's process types as children and stops them all together."""

    def __init__(self, environ: Mapping[str, str], data_dir: Path = DATA_DIR) -> None:
        self.environ = dict(environ)
        self.data_dir = data_dir.resolve()
        self.postgres: EmbeddedPostgres | None = None
        self.redis: EmbeddedRedis | None = None
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self._stopping = False

    def prepare_environment(self) -> dict[str, str]:
        """The environment every child runs in: the caller's, plus embedded services for what it lacks."""
        env = dict(self.environ)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not env.get("DATABASE_URL"):
            self.postgres = EmbeddedPostgres(self.data_dir / "postgres")
            env["DATABASE_URL"] = self.postgres.start()
        if not env.get("REDIS_URL"):
            self.redis = EmbeddedRedis(self.data_dir / "redis")
            env["REDIS_URL"] = self.redis.start()
        env.setdefault("STORAGE_URL", f"file://{self.data_dir / 'objects'}")
        env.setdefault("SECRET_KEY", _secret_key(self.data_dir))
        env.setdefault("WEB_CONCURRENCY", "1")
        env.setdefault("GRACEFUL_TIMEOUT", "5")
        if sys.stdout.isatty():
            env.setdefault("LOG_FORMAT", "console")
        return env

    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        try:
            env = self.prepare_environment()
            port = env.get("PORT", "8000")
            url = f"http://localhost:{port}"
            satchel = [sys.executable, "-m", "satchel"]
            subprocess.run([*satchel, "migrate"], env=env, check=True)
            for process_type in ("web", "worker"):
                self.children[process_type] = subprocess.Popen(
                    [*satchel, process_type], env=env, start_new_session=True
                )
            _wait_healthy(url, list(self.children.values()), lambda: self._stopping)
            print(f"\n  Satchel is running at {url}\n  data in {self.data_dir}; press Ctrl-C to stop\n", flush=True)
            return self._watch()
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            if not self._stopping:
                print(f"satchel dev: {exc}", file=sys.stderr)
                return 1
            return 0
        finally:
            self.stop()

    def _watch(self) -> int:
        while not self._stopping:
            for name, child in self.children.items():
                if child.poll() is not None:
                    print(f"satchel dev: {name} exited with code {child.returncode}", file=sys.stderr)
                    return 1
            time.sleep(0.2)
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def stop(self) -> None:
        """Ask every child to finish its work (SIGTERM), then stop the data servers."""
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children.values():
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
        if self.redis:
            self.redis.stop()
        if self.postgres:
            self.postgres.stop()


def run_dev() -> int:
    return Supervisor(process_environment()).run()
