"""What every benchmark starts from and ends with: a scratch Satchel, and a table in results/.

The scratch Satchel is a database of its own on DATABASE_URL's server, migrated, with file storage
in a temporary folder; both are removed afterwards, whatever happened.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from satchel.runtime.embedded import free_port


@contextmanager
def scratch_satchel(**settings: str) -> Iterator[tuple[dict[str, str], Path]]:
    """The environment of a Satchel on a fresh, migrated database (``settings`` on top), and its work folder."""
    admin = os.environ["DATABASE_URL"]
    database = f"satchel_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    work = Path(tempfile.mkdtemp(prefix="satchel-bench-"))
    env = {
        **os.environ,
        "DATABASE_URL": urlunsplit(urlsplit(admin)._replace(path=f"/{database}")),
        "STORAGE_URL": f"file://{work / 'objects'}",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "PORT": str(free_port()),
        "LOG_LEVEL": "WARNING",
        **settings,
    }
    try:
        subprocess.run([sys.executable, "-m", "satchel", "migrate"], env=env, check=True, capture_output=True)
        yield env, work
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def write_table(lines: list[str], out: Path) -> None:
    """The result, to ``out`` (for the record) and to stdout (for the person running it)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
