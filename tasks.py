#!/usr/bin/env python3
"""Satchel's commands, needing only Python 3.11+ and git:

    python3 tasks.py dev     start Satchel locally (embedded PostgreSQL + Redis) and print its URL
    python3 tasks.py test    run lint, types, the architecture contract and every test
    python3 tasks.py bench   run every benchmark against its baselines; writes bench/RESULTS.md (--quick: ~3 min)

Each first installs what it needs: a pinned uv in .tools/, then the locked
dependencies in .venv/ (``uv sync --frozen``). Nothing else is assumed.

And one for a dev that is running, from another terminal:

    python3 tasks.py satchel ARGS...   e.g. satchel users create you@example.com, against that dev
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TOOLS = ROOT / ".tools"
VENV = ROOT / ".venv"
DEV_ENV = Path(".satchel") / "dev.env"  # written by a running dev: the settings its processes run with
UV_VERSION = "0.13.8"
BIN = "Scripts" if os.name == "nt" else "bin"


def _run(*args: object, **kwargs: object) -> None:
    subprocess.run([str(a) for a in args], check=True, cwd=ROOT, **kwargs)  # type: ignore[call-overload]


def ensure_uv() -> Path:
    uv = TOOLS / BIN / "uv"
    if uv.exists():
        found = subprocess.run([uv, "--version"], capture_output=True, text=True).stdout
        if UV_VERSION in found:
            return uv
    print(f"tasks: installing uv {UV_VERSION} into {TOOLS.name}/", flush=True)
    _run(sys.executable, "-m", "venv", "--clear", TOOLS)
    _run(TOOLS / BIN / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"uv=={UV_VERSION}")
    return uv


def ensure_env() -> None:
    """The locked dependencies, exactly, in .venv/ (factor II)."""
    _run(ensure_uv(), "sync", "--frozen", "--python", sys.executable)


def venv_tool(name: str) -> str:
    return str(VENV / BIN / name)


def dev(args: list[str]) -> int:
    ensure_env()
    os.chdir(ROOT)
    os.execv(venv_tool("satchel"), [venv_tool("satchel"), "dev", *args])


def _dev_env_file() -> Path:
    """The dev.env of the dev data folder here or in a parent (``satchel dev`` run elsewhere), else the checkout's."""
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / DEV_ENV).is_file():
            return folder / DEV_ENV
    return ROOT / DEV_ENV


def read_dev_env(path: Path) -> tuple[int | None, dict[str, str]]:
    """The pid of the dev that wrote ``path`` (named in its first line) and the environment it holds."""
    text = path.read_text()
    header = re.search(r"\(pid (\d+)\)", text.partition("\n")[0])
    assignments = shlex.split(text, comments=True)  # as a shell reads it: a quoted value may span lines
    env = dict(assignment.partition("=")[::2] for assignment in assignments)
    return (int(header.group(1)) if header else None), env


def _alive(pid: int) -> bool:
    """Whether ``pid`` is still a satchel process: once a dev is killed outright, its pid may be reused."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, as another user
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        return any(b"satchel" in arg for arg in argv) and b"dev" in argv
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # without /proc the pid alone must do


def satchel(args: list[str]) -> int:
    """``satchel ARGS…`` with the settings of the running dev, which win over this shell's for what they name."""
    path = _dev_env_file()
    try:
        pid, dev_env = read_dev_env(path)
    except FileNotFoundError:
        pid, dev_env = None, {}
        problem = f"no dev is running here ({path} is missing)"
    else:
        problem = f"the dev that wrote {path} is no longer running"
    if pid is None or not _alive(pid):
        print(f"tasks: {problem}; start `python3 tasks.py dev` first", file=sys.stderr)
        return 1
    if not Path(venv_tool("satchel")).exists():
        ensure_env()
    os.chdir(path.parent.parent)  # where that dev runs, so a .env there counts the same for both
    # The shell's NAME_FILE would clash with dev's NAME ("both set"): dev's settings win, in either form.
    shell = {k: v for k, v in os.environ.items() if k.removesuffix("_FILE") not in dev_env}
    os.execve(venv_tool("satchel"), [venv_tool("satchel"), *args], {**shell, **dev_env})


SYSTEM_PARTS = {  # real parts some tests drive, that only the system's package manager has
    "/usr/bin/chromium": ("chromium", "the browser tests"),
    "/usr/sbin/clamd": ("clamav-daemon", "the virus-scan tests"),
    "/usr/sbin/nginx": ("nginx", "the scale-out test"),
    "/usr/sbin/ip": ("iproute2", "the scale-out test"),
}


def ensure_system_parts() -> None:
    """Install Chromium and ClamAV where we may (root with apt); elsewhere their tests are skipped."""
    missing = {path: spec for path, spec in SYSTEM_PARTS.items() if not Path(path).exists()}
    can_install = hasattr(os, "geteuid") and os.geteuid() == 0 and Path("/usr/bin/apt-get").exists()
    if missing and can_install:
        packages = [package for package, _ in missing.values()]
        print(f"tasks: installing {', '.join(packages)}", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=False, env=env)
    for path, (package, tests) in SYSTEM_PARTS.items():
        if not Path(path).exists():
            print(f"tasks: {path} is missing, so {tests} will be skipped (install {package} to run them)")


def test(args: list[str]) -> int:
    ensure_env()
    ensure_system_parts()
    checks = [
        ["ruff", "check", "src", "tests", "bench", "tasks.py"],
        ["ruff", "format", "--check", "src", "tests", "bench", "tasks.py"],
        ["mypy", "src"],
        ["lint-imports"],
    ]
    for check in checks:
        print(f"tasks: {' '.join(check)}", flush=True)
        if subprocess.run([venv_tool(check[0]), *check[1:]], cwd=ROOT).returncode != 0:
            return 1
    print("tasks: pytest", flush=True)
    return subprocess.run([venv_tool("pytest"), *args], cwd=ROOT).returncode


def ensure_wrk() -> bool:
    """The load generator the benchmarks use: installed where we may (root with apt), else named."""
    if shutil.which("wrk"):
        return True
    if hasattr(os, "geteuid") and os.geteuid() == 0 and Path("/usr/bin/apt-get").exists():
        print("tasks: installing wrk", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, env=env)
    if shutil.which("wrk"):
        return True
    print("tasks: the benchmarks need wrk: install it with the system's package manager (apt-get install wrk)")
    return False


def bench(args: list[str]) -> int:
    """Every benchmark, next to its baselines, with DATABASE_URL/REDIS_URL or embedded servers (bench/run.py)."""
    ensure_env()
    if not ensure_wrk():
        return 1
    if not Path("/usr/sbin/nginx").exists():
        print("tasks: /usr/sbin/nginx is missing, so the nginx download baseline is left out (install nginx)")
    os.chdir(ROOT)
    # exec, not a child: Ctrl-C then reaches the bench alone, which stops its servers and drops its databases
    os.execv(venv_tool("python"), [venv_tool("python"), str(ROOT / "bench" / "run.py"), *args])


COMMANDS = {"dev": dev, "test": test, "bench": bench, "satchel": satchel}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__)
        return 2
    return COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
