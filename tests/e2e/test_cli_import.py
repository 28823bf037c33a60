"""``satchel files import``: files already on the server's disk brought into an account by the real command,
shared by one link on request, and every refusal leaving nothing behind, in the database or in the store."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from support.processes import run_satchel, running_web

OWNER = "ops@example.test"
MIB = 1024 * 1024


@pytest.fixture
def env(base_env: dict[str, str], own_database: str) -> dict[str, str]:
    """A Satchel on a database of this test's own, with an account to import into."""
    env = {**base_env, "DATABASE_URL": own_database}
    made = subprocess.run(
        [sys.executable, "-m", "satchel", "users", "create", OWNER, "--password-stdin"],
        input="correct horse battery staple\n", env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return env


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def imported(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines the command printed for the operator, without the JSON log events around them."""
    return [line for line in result.stdout.splitlines() if not line.startswith("{")]


def events(result: subprocess.CompletedProcess[str], name: str) -> list[dict[str, Any]]:
    logged = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return [event for event in logged if event["event"] == name]


def rows(env: dict[str, str], sql: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        return conn.execute(sql, params).fetchall()


def stored(env: dict[str, str]) -> list[Path]:
    """Everything in the object store (file storage): what a listing of it would show."""
    root = Path(env["STORAGE_URL"].removeprefix("file://"))
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def footprint(env: dict[str, str]) -> dict[str, int]:
    """What an import leaves in the database: rows of every kind it writes, and the quota it takes."""
    counts = {table: rows(env, f"SELECT count(*) FROM {table}")[0][0] for table in ("files", "shares", "jobs")}
    # Of files and links: the account the test made has events of its own (created, signed in).
    what = "action LIKE 'file.%%' OR action LIKE 'share.%%'"
    counts["audit_events"] = rows(env, f"SELECT count(*) FROM audit_events WHERE {what}")[0][0]
    counts["used_bytes"] = rows(env, "SELECT used_bytes FROM users WHERE email = %s", OWNER)[0][0]
    return counts


def wait_for_bytes_to_land(env: dict[str, str], running: subprocess.Popen[str]) -> None:
    """Returns once the import's first bytes are reaching the store: it is streaming, nothing recorded yet."""
    deadline = time.monotonic() + 60
    while not stored(env):
        assert running.poll() is None, running.communicate()
        assert time.monotonic() < deadline, "no bytes ever reached the store"
        time.sleep(0.002)


NOTHING = {"files": 0, "shares": 0, "jobs": 0, "audit_events": 0, "used_bytes": 0}


def assert_refused_leaving_nothing(
    result: subprocess.CompletedProcess[str], env: dict[str, str], says: str, *, used_before: int = 0
) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("satchel: ") and says in line and line.endswith("Nothing was imported."), line
    assert "Traceback" not in result.stdout + result.stderr
    assert imported(result) == [], "no file is reported as imported"
    assert footprint(env) == NOTHING | {"used_bytes": used_before}
    assert stored(env) == []


def test_one_file_is_imported_with_its_checksum_and_reported_by_id_and_name(
    env: dict[str, str], tmp_path: Path
) -> None:
    data = os.urandom(300_000)
    report = write(tmp_path / "disk" / "report.pdf", data)

    result = run_satchel("files", "import", str(report), "--owner", OWNER, env=env)
    assert result.returncode == 0, result.stderr
    [line] = imported(result)
    file_id, name = line.split("\t")
    assert name == "report.pdf"
    [(size, sha256, content_type, key)] = rows(
        env, "SELECT size, sha256, content_type, storage_key FROM files WHERE id = %s", file_id
    )
    assert (size, sha256, content_type) == (len(data), hashlib.sha256(data).hexdigest(), "application/pdf")
    assert [p.read_bytes() for p in stored(env)] == [data] and stored(env)[0].as_posix().endswith(key)
    assert footprint(env) == {"files": 1, "shares": 0, "jobs": 0, "audit_events": 1, "used_bytes": len(data)}
    [(action, client)] = rows(env, "SELECT action, client FROM audit_events WHERE subject = %s", f"file:{file_id}")
    assert (action, client) == ("file.uploaded", "satchel files import")
    assert report.read_bytes() == data, "the original stays where it was"


def test_several_files_and_a_folder_are_imported_in_order_with_sub_folders_flattened(
    env: dict[str, str], tmp_path: Path
) -> None:
    disk = tmp_path / "disk"
    contents = {
        "notes.txt": b"notes",
        "album/b.jpg": b"not really a jpeg",
        "album/a.txt": b"caption",
        "album/2024/summer/c.txt": b"deep down",
    }
    for name, data in contents.items():
        write(disk / name, data)

    result = run_satchel("files", "import", str(disk / "notes.txt"), str(disk / "album"), "--owner", OWNER, env=env)
    assert result.returncode == 0, result.stderr
    names = [line.split("\t")[1] for line in imported(result)]
    assert names == ["notes.txt", "a.txt", "b.jpg", "c.txt"], "files as given, then a folder's below it, by name"
    stored_rows = rows(env, "SELECT name, sha256 FROM files ORDER BY name")
    expected = {
        "notes.txt": "notes.txt",
        "a.txt": "album/a.txt",
        "b.jpg": "album/b.jpg",
        "c.txt": "album/2024/summer/c.txt",
    }
    assert stored_rows == sorted((n, hashlib.sha256(contents[p]).hexdigest()) for n, p in expected.items())
    assert footprint(env)["shares"] == 0, "no link unless asked"
    assert [kind for (kind,) in rows(env, "SELECT kind FROM jobs")] == ["thumbnail"], "the picture's follow-up job"


def test_share_makes_one_link_to_every_file_with_the_terms_asked_and_it_downloads_the_same_bytes(
    env: dict[str, str], tmp_path: Path
) -> None:
    files = {"one.bin": os.urandom(2 * MIB + 3), "two.txt": b"second file"}
    for name, data in files.items():
        write(tmp_path / "disk" / name, data)
    terms = ["--expires-in", "2d", "--max-downloads", "3", "--title", "Board <pack>", "--password-stdin"]
    command = [sys.executable, "-m", "satchel", "files", "import", str(tmp_path / "disk"), "--owner", OWNER, "--share"]
    command += terms
    started = datetime.now(UTC)
    result = subprocess.run(command, input="open sesame\n", env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr

    *file_lines, link_line = imported(result)
    ids = {name: file_id for file_id, name in (line.split("\t") for line in file_lines)}
    assert list(ids) == ["one.bin", "two.txt"]
    url, *said = link_line.split("\t")
    assert url.startswith(f"http://localhost:{env['PORT']}/s/")
    assert said[1:] == ["3 downloads", "password", "title Board <pack>"]
    expires = datetime.fromisoformat(said[0].removeprefix("expires "))
    assert abs(expires - (started + timedelta(days=2))) < timedelta(minutes=1)
    [(title, max_downloads)] = rows(env, "SELECT title, max_downloads FROM shares")
    assert (title, max_downloads) == ("Board <pack>", 3)
    assert "open sesame" not in result.stdout + result.stderr

    with running_web(env) as (_, _):
        page = httpx.get(url, headers={"X-Share-Password": "open sesame"})
        assert page.status_code == 200 and "Board &lt;pack&gt;" in page.text
        assert httpx.get(f"{url}/files/{ids['two.txt']}").status_code == 401, "the password holds"
        for name, data in files.items():
            got = httpx.get(f"{url}/files/{ids[name]}", headers={"X-Share-Password": "open sesame"}, timeout=60)
            assert got.status_code == 200, got.text
            assert hashlib.sha256(got.content).hexdigest() == hashlib.sha256(data).hexdigest(), name


def test_without_a_terminal_progress_is_reported_as_json_events_up_to_every_byte(
    env: dict[str, str], tmp_path: Path
) -> None:
    size = 9 * MIB + 1  # more than two read blocks
    write(tmp_path / "big.bin", os.urandom(size))
    result = run_satchel("files", "import", str(tmp_path / "big.bin"), "--owner", OWNER, env=env)
    assert result.returncode == 0, result.stderr
    progress = events(result, "progress")
    assert progress, "no progress events"
    assert {k: progress[-1][k] for k in ("task", "stage", "done", "total")} == {
        "task": "import",
        "stage": "bytes",
        "done": size,
        "total": size,
    }
    assert len(imported(result)) == 1, "besides the JSON events, one line: the file"


@pytest.mark.parametrize(
    "case", ["missing owner", "missing path", "link out of the folder", "empty file", "special file", "quota"]
)
def test_a_refused_import_says_why_in_one_line_and_leaves_nothing_behind(
    env: dict[str, str], tmp_path: Path, case: str
) -> None:
    disk = tmp_path / "disk"
    write(disk / "a.txt", b"first")
    write(disk / "sub" / "b.txt", b"second")
    owner, says = OWNER, ""
    if case == "missing owner":
        owner, says = "nobody@example.test", "No account for nobody@example.test."
    elif case == "missing path":
        disk = tmp_path / "no-such-folder"
        says = "no-such-folder: no such file or folder."
    elif case == "link out of the folder":
        (disk / "sub" / "z-key.pem").symlink_to(write(tmp_path / "secret" / "key.pem", b"private"))
        says = "sub/z-key.pem: a link out of the folder"
    elif case == "empty file":
        write(disk / "sub" / "z-empty.txt", b"")
        says = "sub/z-empty.txt: The file is empty"
    elif case == "special file":
        os.mkfifo(disk / "sub" / "z-pipe")
        says = "sub/z-pipe: not a regular file."
    elif case == "quota":
        rows(env, "UPDATE users SET quota_bytes = 8 WHERE email = %s RETURNING id", OWNER)
        says = "These 2 files take 11 B, more than the 8 B left of ops@example.test's quota."
    result = run_satchel("files", "import", str(disk), "--owner", owner, "--share", env=env)
    assert_refused_leaving_nothing(result, env, says)


def test_an_unreadable_file_stops_the_import_before_any_file_is_stored(env: dict[str, str], tmp_path: Path) -> None:
    """Every path is opened before the first byte moves: the readable file before it is not imported either."""
    write(tmp_path / "disk" / "a.txt", b"readable")
    locked = write(tmp_path / "disk" / "b.txt", b"locked away")
    locked.chmod(0)
    # As root, file modes do not stop a read: drop the capabilities that let root ignore them.
    launcher = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    command = [*launcher, sys.executable, "-m", "satchel", "files", "import", str(tmp_path / "disk"), "--owner", OWNER]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert_refused_leaving_nothing(result, env, "disk/b.txt: cannot be read (Permission denied).")


def test_a_quota_that_no_longer_holds_all_the_files_part_way_through_takes_back_what_had_landed(
    env: dict[str, str], tmp_path: Path
) -> None:
    """The quota held when the import began; while its bytes streamed, other uploads took the room (the test
    stands in for them, with the import paused). The files that had already landed go, and nothing is recorded."""
    write(tmp_path / "disk" / "a.bin", os.urandom(MIB))
    write(tmp_path / "disk" / "b.bin", os.urandom(48 * MIB))
    command = [sys.executable, "-m", "satchel", "files", "import", str(tmp_path / "disk"), "--owner", OWNER]
    running = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_bytes_to_land(env, running)
    running.send_signal(signal.SIGSTOP)
    try:
        rows(env, "UPDATE users SET used_bytes = quota_bytes - %s WHERE email = %s RETURNING id", 2 * MIB, OWNER)
    finally:
        running.send_signal(signal.SIGCONT)
    out, err = running.communicate(timeout=120)
    result = subprocess.CompletedProcess(command, running.returncode, out, err)
    [(others)] = rows(env, "SELECT used_bytes FROM users WHERE email = %s", OWNER)[0]
    assert_refused_leaving_nothing(result, env, "quota no longer holds these files", used_before=others)


def test_an_import_interrupted_while_its_bytes_stream_keeps_nothing(env: dict[str, str], tmp_path: Path) -> None:
    """Ctrl-C part-way: the bytes that had landed go again, and nothing was recorded."""
    write(tmp_path / "disk" / "a.bin", os.urandom(MIB))
    write(tmp_path / "disk" / "b.bin", os.urandom(64 * MIB))
    command = [sys.executable, "-m", "satchel", "files", "import", str(tmp_path / "disk"), "--owner", OWNER]
    running = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_bytes_to_land(env, running)
    running.send_signal(signal.SIGINT)
    out, err = running.communicate(timeout=120)
    assert running.returncode == 130, out + err
    assert err.strip() == "satchel: interrupted." and "Traceback" not in out + err
    assert footprint(env) == NOTHING
    assert stored(env) == []
