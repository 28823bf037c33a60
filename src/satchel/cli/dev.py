"""``satchel dev``: the whole service on one machine, for a person to try (factor X).

Starts real PostgreSQL and Redis from wheels under ``.satchel/`` (unless their URLs
are already set), applies migrations, runs the ``web`` and ``worker`` process types
as child processes exactly as production runs them, and prints the URL. Ctrl-C
stops everything in order; the next run reuses the data.

While it runs, ``.satchel/dev.env`` holds the settings its children run with, so admin
commands in another terminal reach the same servers (``python3 tasks.py satchel …``).
The ``satchel`` command itself never reads that file: outside dev, config is the environment.

A process supervisor, so above the settings it publishes; imported only by the ``dev`` command, as its
embedded servers are development dependencies.
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType

import typer

from satchel.runtime.embedded import EmbeddedPostgres, EmbeddedRedis
from satchel.settings import process_environment, setting_names

DATA_DIR = Path(".satchel")
DEV_ENV = "dev.env"
TASKS_FILE = Path("tasks.py")  # dev run from a checkout: its front door runs admin commands


def _secret_key(data_dir: Path) -> str:
    """A key generated once per data folder, so sessions survive restarts of dev mode."""
    path = data_dir / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _given(env: Mapping[str, str], name: str) -> bool:
    """Whether the caller set ``name``, directly or as ``NAME_FILE``; dev must not then set it too."""
    return bool(env.get(name) or env.get(f"{name}_FILE"))


def write_dev_env(path: Path, env: Mapping[str, str], pid: int) -> None:
    """Publish the settings dev's children run with: owner-only, as it holds the secret key.

    Values are shell-quoted, so ``set -a; . .satchel/dev.env`` works too; the header names the
    supervisor, so a file left by a dev that was killed outright is known to be stale.
    """
    names = setting_names()
    lines = [f"# the environment of satchel dev (pid {pid}); removed when it stops"]
    lines += [f"{name}={shlex.quote(value)}" for name, value in sorted(env.items()) if name in names]
    draft = path.with_name(f".{path.name}.{pid}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines) + "\n")
    draft.replace(path)  # whole or not at all, for a reader in another terminal


def process_environments(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The environment of each process type dev runs. One machine, so one port each: with
    ``SATCHEL_METRICS_PORT`` set, web serves metrics on it and the worker on the next port."""
    worker = dict(env)
    if port := env.get("SATCHEL_METRICS_PORT"):
        worker["SATCHEL_METRICS_PORT"] = str(int(port) + 1) if port.isdigit() else port
    return {"web": dict(env), "worker": worker}


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
        self.dev_env = self.data_dir / DEV_ENV
        self._published = False
        self._stopping = False

    def prepare_environment(self) -> dict[str, str]:
        """The environment every child runs in: the caller's, plus embedded services for what it lacks."""
        env = dict(self.environ)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not _given(env, "DATABASE_URL"):
            self.postgres = EmbeddedPostgres(self.data_dir / "postgres")
            env["DATABASE_URL"] = self.postgres.start()
        if not _given(env, "REDIS_URL"):
            self.redis = EmbeddedRedis(self.data_dir / "redis")
            env["REDIS_URL"] = self.redis.start()
        defaults = {
            "STORAGE_URL": f"file://{self.data_dir / 'objects'}",
            "SECRET_KEY": _secret_key(self.data_dir),
            "WEB_CONCURRENCY": "1",
            "GRACEFUL_TIMEOUT": "5",
            "SATCHEL_SIGNUP": "open",  # the first run: open the URL, create an account
        }
        if sys.stdout.isatty():
            defaults["LOG_FORMAT"] = "console"
        env.update({name: value for name, value in defaults.items() if not _given(env, name)})
        return env

    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: its terminal was closed
            signal.signal(sig, self._on_signal)
        try:
            env = self.prepare_environment()
            port = env.get("PORT", "8000")
            url = f"http://localhost:{port}"
            satchel = [sys.executable, "-m", "satchel"]
            subprocess.run([*satchel, "migrate"], env=env, check=True)
            for process_type, child_env in process_environments(env).items():
                self.children[process_type] = subprocess.Popen(
                    [*satchel, process_type], env=child_env, start_new_session=True
                )
            _wait_healthy(url, list(self.children.values()), lambda: self._stopping)
            write_dev_env(self.dev_env, env, os.getpid())
            self._published = True
            typer.echo(self._banner(url))
            return self._watch()
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            if not self._stopping:
                typer.echo(f"satchel dev: {exc}", err=True)
                return 1
            return 0
        finally:
            self.stop()

    def _banner(self, url: str) -> str:
        if TASKS_FILE.exists():
            admin = "python3 tasks.py satchel users create you@example.com"
        else:
            admin = f"satchel … with the environment in {self.dev_env}"
        return (
            f"\n  Satchel is running at {url}\n  admin commands: {admin}\n"
            f"  data in {self.data_dir}; press Ctrl-C to stop\n"
        )

    def _watch(self) -> int:
        while not self._stopping:
            for name, child in self.children.items():
                if child.poll() is not None:
                    typer.echo(f"satchel dev: {name} exited with code {child.returncode}", err=True)
                    return 1
            time.sleep(0.2)
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def stop(self) -> None:
        """Ask every child to finish its work (SIGTERM), then stop the data servers."""
        if self._published:  # first: no admin command should reach a dev that is stopping
            self.dev_env.unlink(missing_ok=True)
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
