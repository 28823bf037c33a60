"""What the numbers were measured on: the machine, the software, and how busy the machine was."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "satchel", "fastapi", "starlette", "uvicorn", "uvicorn-worker", "gunicorn", "httptools", "uvloop", "sqlalchemy",
    "psycopg", "redis", "celery", "structlog", "jinja2", "obstore", "flask", "boto3", "moto",
)  # fmt: skip


def _first(path: str, pattern: str) -> str:
    try:
        found = re.search(pattern, Path(path).read_text(), re.MULTILINE)
    except OSError:
        return "unknown"
    return found.group(1).strip() if found else "unknown"


def _version_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except OSError:
        return "not installed"
    return (done.stdout + done.stderr).strip().splitlines()[0] if (done.stdout + done.stderr).strip() else "unknown"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def release() -> str:
    """The commit measured, and whether the checkout had changes on top of it."""
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    status = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True, text=True)
    if commit.returncode != 0:
        return "unknown (not a git checkout)"
    return commit.stdout.strip() + (" with uncommitted changes in src/" if status.stdout.strip() else "")


def backing_versions(database_url: str, redis_url: str) -> tuple[str, str]:
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    info = redis.Redis.from_url(redis_url, socket_timeout=5).info("server")
    return (str(row[0]) if row else "unknown"), str(info.get("redis_version", "unknown"))


def facts(backing: str) -> list[tuple[str, str]]:
    """(what, value) rows for the results' first table."""
    memory_kib = _first("/proc/meminfo", r"^MemTotal:\s+(\d+)")
    memory = f"{int(memory_kib) / 2**20:.1f} GiB" if memory_kib.isdigit() else "unknown"
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    database, cache = backing_versions(os.environ["DATABASE_URL"], os.environ["REDIS_URL"])
    cpu = _first("/proc/cpuinfo", r"^model name\s*:(.*)$")
    return [
        ("CPU", f"{os.cpu_count()} cores, {cpu}"),
        ("memory", memory),
        ("kernel", f"{platform.system()} {platform.release()}"),
        ("OS", _first("/etc/os-release", r'^PRETTY_NAME="?([^"\n]*)"?')),
        ("Python", f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})"),
        ("Satchel commit", release()),
        ("packages", ", ".join(versions)),
        ("load generator", _version_line(["wrk", "-v"]).split(" Copyright")[0]),
        ("nginx", _version_line(["/usr/sbin/nginx", "-v"])),
        ("backing services", f"{backing}; PostgreSQL {database}, Redis {cache}"),
    ]
