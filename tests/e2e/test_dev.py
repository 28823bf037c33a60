"""``satchel dev``: one command gives a person the whole service, embedded servers included, and
``python3 tasks.py satchel …`` reaches it from another terminal."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import psutil
import psycopg
import pytest

from satchel.cli.dev import write_dev_env
from satchel.runtime.embedded import free_port

from support.processes import SatchelProcess

pytestmark = pytest.mark.timeout(240)

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PASSWORD = "correct horse battery staple"
BANNER = re.compile(r"Satchel is running at (http://\S+)")
HINT = "admin commands: python3 tasks.py satchel users create you@example.com"


def _basic_env() -> dict[str, str]:
    # Nothing but the basics: dev mode must bring its own PostgreSQL, Redis and storage.
    return {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}


class Dev:
    """``satchel dev`` run from a folder that looks like a checkout: its own data, and ``tasks.py`` at hand."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / ".satchel"
        self.env = {**_basic_env(), "PORT": str(free_port()), "PYTHONUNBUFFERED": "1"}
        self.url = f"http://localhost:{self.env['PORT']}"
        self.process: SatchelProcess | None = None
        self.starts = 0
        (folder / "tasks.py").symlink_to(ROOT / "tasks.py")  # the real front door, finding this dev from here

    def start(self) -> None:
        self.process = process = SatchelProcess("dev", env=self.env, cwd=str(self.folder))  # stopped even if it fails
        process.wait_for(lambda: any(BANNER.search(line) for line in process.lines), timeout=120, what="the URL")
        self.starts += 1
        assert next(m.group(1) for line in process.lines if (m := BANNER.search(line))) == self.url

    def stop(self) -> int:
        """Ctrl-C, as a person stops it; every process it started must be gone after."""
        assert self.process
        children = psutil.Process(self.process.process.pid).children(recursive=True)
        self.process.signal(signal.SIGINT)  # what Ctrl-C sends
        code = self.process.wait(90)
        # A pool's child may still be ending as its parent returns: a few seconds to be gone, not forever.
        _, left = psutil.wait_procs([c for c in children if c.is_running()], timeout=10)
        assert not [c for c in left if c.status() != psutil.STATUS_ZOMBIE], "everything stopped"
        self.process = None
        return code

    def tasks(
        self, *args: str, stdin: str = "", shell: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``python3 tasks.py ARGS`` as an operator types it in another terminal (whose ``shell`` variables
        are given), with no terminal to prompt on: a password prompt reads ``stdin``."""
        return subprocess.run(
            ["python3", "tasks.py", *args], cwd=self.folder, env={**_basic_env(), **(shell or {})}, input=stdin,
            capture_output=True, text=True, timeout=120, start_new_session=True,
        )  # fmt: skip


@pytest.fixture(scope="module")
def dev() -> Iterator[Dev]:
    """One dev for the whole module, in a folder outside pytest's numbered ones (other sessions may clean those)."""
    folder = Path(tempfile.mkdtemp(prefix="satchel-dev-test-"))
    running = Dev(folder)
    running.start()
    try:
        yield running
    finally:
        if running.process:
            running.process.signal(signal.SIGINT)
            running.process.wait(90)
        shutil.rmtree(folder, ignore_errors=True)


def sign_in(browser: httpx.Client, email: str) -> httpx.Response:
    login = browser.get("/login", headers={"Accept": "text/html"})
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
    assert csrf, login.text[:300]
    return browser.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf.group(1)})


def test_dev_starts_everything_prints_the_url_and_stops_cleanly_on_ctrl_c(dev: Dev) -> None:
    assert dev.process and any(HINT in line for line in dev.process.lines)
    assert httpx.get(f"{dev.url}/readyz", timeout=5).status_code == 200
    assert (dev.data / "postgres" / "PG_VERSION").exists() and (dev.data / "objects").is_dir()
    assert dev.process
    started = psutil.Process(dev.process.process.pid).children(recursive=True)
    programs = {Path(p.exe()).name: Path(p.exe()) for p in started if p.is_running()}
    for server in ("postgres", "redis-server"):  # production's servers, from the project's own wheels
        assert server in programs and programs[server].is_relative_to(Path(sys.prefix).resolve()), programs
    commands = [" ".join(p.cmdline()) for p in started if p.is_running()]
    for process_type in ("satchel web", "satchel worker"):  # the Procfile's commands, not a dev-only server
        assert any(process_type in c or f"-m {process_type}" in c for c in commands), commands
    key = (dev.data / "secret_key").read_text()

    assert dev.stop() == 0
    assert not (dev.data / "dev.env").exists(), "no admin command may think a stopped dev still runs"
    dev.start()  # a second run reuses the data
    assert (dev.data / "secret_key").read_text() == key
    dev_env = (dev.data / "dev.env").read_text()
    database_url = re.search(r"^DATABASE_URL=(\S+)$", dev_env, re.MULTILINE)
    assert database_url
    with psycopg.connect(database_url.group(1)) as conn:
        assert conn.execute("SELECT count(*) FROM releases").fetchone() == (dev.starts,), "every run, one database"


def test_the_first_run_is_open_the_url_and_create_an_account(dev: Dev) -> None:
    """dev runs with SATCHEL_SIGNUP=open, where production's default is by invitation (README, first run)."""
    assert "SATCHEL_SIGNUP=open" in (dev.data / "dev.env").read_text()
    with httpx.Client(base_url=dev.url, timeout=30) as browser:
        form = browser.get("/signup", headers={"Accept": "text/html"})
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert csrf, form.text[:300]
        data = {"email": "first-run@example.com", "password": PASSWORD, "csrf_token": csrf.group(1)}
        created = browser.post("/signup", data=data)
        assert created.status_code == 303 and created.headers["location"] == "/files"
        assert "first-run@example.com" in browser.get("/files", headers={"Accept": "text/html"}).text


def test_an_account_created_with_tasks_py_satchel_in_another_terminal_can_sign_in_to_dev(dev: Dev) -> None:
    env_file = dev.data / "dev.env"
    assert env_file.stat().st_mode & 0o777 == 0o600, "it holds the secret key"
    assert "PATH=" not in env_file.read_text(), "only Satchel's settings, not the whole shell"

    elsewhere = {"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/elsewhere"}  # left over in that shell
    created = dev.tasks(
        "satchel", "users", "create", "alice@example.com", stdin=f"{PASSWORD}\n{PASSWORD}\n", shell=elsewhere
    )
    assert created.returncode == 0, created.stderr
    assert "created alice@example.com" in created.stdout
    with httpx.Client(base_url=dev.url, timeout=10) as browser:
        assert sign_in(browser, "alice@example.com").status_code == 303
        assert browser.get("/api/me").json()["email"] == "alice@example.com"


def _readme_example() -> list[str]:
    """The shell block under "Everything works from curl", line by line, exactly as the README has it."""
    text = README.read_text()
    block = re.search(r"Everything works from curl.*?```sh\n(.*?)```", text, re.DOTALL)
    assert block, "the README's curl example"
    return block.group(1).splitlines()


def test_the_readmes_token_and_curl_example_runs_as_written_against_dev(dev: Dev, tmp_path: Path) -> None:
    if not shutil.which("curl"):
        if os.environ.get("CI"):
            pytest.fail("curl is not installed; CI must run the README's example")
        pytest.skip("curl is not installed, so the README's example cannot run")
    lines = _readme_example()
    token_line = next(line for line in lines if line.startswith("TOKEN=$("))
    upload_line = next(line for line in lines if line.startswith("curl -T "))
    answer_line = next(line for line in lines if line.startswith("# -> "))
    download_line = next(line for line in lines if line.startswith("curl -OJ "))
    created = dev.tasks("satchel", "users", "create", "you@example.com", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert created.returncode == 0, created.stderr

    sender, receiver = tmp_path / "sender", tmp_path / "receiver"
    sender.mkdir()
    receiver.mkdir()
    report = os.urandom(200_000)
    (sender / "report.pdf").write_bytes(report)
    at_dev = {"http://localhost:8000": dev.url}  # the README's port, which these tests must leave free

    def shell(line: str, cwd: Path, **variables: str) -> str:
        for written, here in {**at_dev, **variables}.items():
            line = line.replace(written, here)
        done = subprocess.run(
            ["bash", "-c", line], cwd=cwd, env=_basic_env(), capture_output=True, text=True, timeout=120,
            start_new_session=True,
        )  # fmt: skip
        assert done.returncode == 0, f"{line}\n{done.stderr}"
        return done.stdout

    token = shell(f'{token_line}; printf %s "$TOKEN"', dev.folder).strip()
    answer = json.loads(shell(upload_line, sender, **{"$TOKEN": token}))
    assert answer_line.startswith('# -> {"file": {...}, "share": {"url": "http://localhost:8000/s/')
    assert answer["file"]["name"] == "report.pdf"
    assert answer["share"]["url"] == f"{dev.url}/s/{answer['share']['token']}"
    shell(download_line, receiver, **{"<token>": answer["share"]["token"]})
    assert (receiver / "report.pdf").read_bytes() == report


def test_a_session_signed_in_before_dev_restarts_is_still_signed_in_after(dev: Dev) -> None:
    created = dev.tasks("satchel", "users", "create", "bob@example.com", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert created.returncode == 0, created.stderr
    with httpx.Client(base_url=dev.url, timeout=10) as browser:
        assert sign_in(browser, "bob@example.com").status_code == 303
        assert browser.get("/api/me").status_code == 200
        assert dev.stop() == 0
        dev.start()
        assert browser.get("/api/me").json()["email"] == "bob@example.com"


def test_tasks_py_satchel_without_a_running_dev_exits_non_zero_and_says_to_start_it(tmp_path: Path) -> None:
    gone = subprocess.Popen(["sleep", "0"])
    gone.wait()
    (tmp_path / ".satchel").mkdir()
    write_dev_env(tmp_path / ".satchel" / "dev.env", {"DATABASE_URL": "postgresql://127.0.0.1:1/x"}, gone.pid)
    (tmp_path / "tasks.py").symlink_to(ROOT / "tasks.py")
    done = subprocess.run(
        ["python3", "tasks.py", "satchel", "users", "list"], cwd=tmp_path, env=_basic_env(), capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "no longer running" in done.stderr and "start `python3 tasks.py dev` first" in done.stderr


def _tasks_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("satchel_tasks", ROOT / "tasks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dev_env_holds_only_satchel_settings_owner_only_and_reads_back_exactly(tmp_path: Path) -> None:
    awkward = "postgresql://u:p a$s'\"w`rd@127.0.0.1:5432/db?x=1&y=2"
    path = tmp_path / "dev.env"
    write_dev_env(path, {"DATABASE_URL": awkward, "SECRET_KEY_FILE": "/run/key", "PATH": "/bin"}, pid=4242)
    assert path.stat().st_mode & 0o777 == 0o600
    assert _tasks_module().read_dev_env(path) == (4242, {"DATABASE_URL": awkward, "SECRET_KEY_FILE": "/run/key"})
