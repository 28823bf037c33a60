#!/usr/bin/env python3
"""Satchel's two commands, needing only Python 3.11+ and git:

    python3 tasks.py dev     start Satchel locally (embedded PostgreSQL + Redis) and print its URL
    python3 tasks.py test    run lint, types, the architecture contract and every test

Each first installs what it needs: a pinned uv in .tools/, then the locked
dependencies in .venv/ (``uv sync --frozen``). Nothing else is assumed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TOOLS = ROOT / ".tools"
VENV = ROOT / ".venv"
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


COMMANDS = {"dev": dev, "test": test}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__)
        return 2
    return COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
