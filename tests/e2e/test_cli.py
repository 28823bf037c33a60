"""The ``satchel`` command as an operator meets it: config errors, config listing, version, migrate."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from alembic import command as alembic

from satchel.adapters.db.migrate import alembic_config, current_revision
from satchel.adapters.db.revisions import head, revisions
from satchel.runtime.embedded import free_port

from support.processes import run_satchel


@pytest.mark.parametrize("command", ["web", "worker", "migrate"])
def test_bad_config_exits_nonzero_naming_every_problem_without_traceback(
    command: str, base_env: dict[str, str]
) -> None:
    env = {
        **base_env,
        "PORT": "eighty",
        "DATABASE_URL": "mysql://root:hunter2@db/satchel",
        "STORAGE_URL": "ftp://files",
        "SECRET_KEY": "short-secret",
        "LOG_FORMAT": "xml",
    }
    del env["REDIS_URL"]
    result = run_satchel(command, env=env)
    assert result.returncode == 78
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 6, result.stderr
    for name in ("PORT", "DATABASE_URL", "STORAGE_URL", "SECRET_KEY", "LOG_FORMAT", "REDIS_URL"):
        assert any(f": {name}: " in line for line in lines), name
    assert "Traceback" not in result.stderr + result.stdout
    assert "hunter2" not in result.stderr and "short-secret" not in result.stderr
    assert "postgresql://" in result.stderr, "the error says what was expected"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REDIS_URL", "redis://localhost:99999/0"),
        ("EMAIL_URL", "smtp://host:notaport"),
        ("STORAGE_URL", "s3://"),
        ("BROKER_URL", "amqp://guest:guest@:5672//"),
        ("CLAMAV_URL", "tcp://:3310"),
        ("FORWARDED_ALLOW_IPS", "proxy.internal"),
    ],
)
def test_web_with_a_url_it_cannot_use_exits_78_naming_the_variable(
    name: str, value: str, base_env: dict[str, str]
) -> None:
    result = run_satchel("web", env={**base_env, name: value})
    assert result.returncode == 78, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"satchel web: config error: {name}: expected "), line
    assert "Traceback" not in result.stderr + result.stdout
    assert "guest:guest" not in result.stderr


def test_config_lists_values_with_their_source_and_hides_secrets(base_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SATCHEL_SHARE_MAX_DAYS=7\n")
    env = {**base_env, "DATABASE_URL": "postgresql://satchel:pg-pass-123@db:5432/satchel"}
    result = run_satchel("config", env=env, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    rows = {line.split()[0]: line for line in out.splitlines()}
    assert rows["DATABASE_URL"].endswith("(environment)") and "pg-pass-123" not in out
    assert "satchel:***@db:5432" in rows["DATABASE_URL"]
    assert env["SECRET_KEY"] not in out and "********" in rows["SECRET_KEY"]
    assert rows["SATCHEL_SHARE_MAX_DAYS"].split()[1] == "7" and rows["SATCHEL_SHARE_MAX_DAYS"].endswith("(.env)")
    assert rows["EMAIL_URL"].endswith("(default)")


def test_version_shows_package_version_and_release(base_env: dict[str, str]) -> None:
    result = run_satchel("--version", env={**base_env, "RELEASE_ID": "v42-abc"})
    assert result.returncode == 0
    assert result.stdout.strip() == "satchel 0.1.0 (release v42-abc)"


def test_migrate_is_the_release_step_and_records_the_release(base_env: dict[str, str], empty_database: str) -> None:
    env = {**base_env, "DATABASE_URL": empty_database, "RELEASE_ID": "r-one"}
    first = run_satchel("migrate", env=env)
    assert first.returncode == 0, first.stderr
    second = run_satchel("migrate", env={**env, "RELEASE_ID": "r-two"})
    assert second.returncode == 0, second.stderr
    with psycopg.connect(empty_database) as conn:
        rows = conn.execute("SELECT release_id FROM releases ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ["r-one", "r-two"]
    done = [json.loads(line) for line in first.stdout.splitlines() if '"migrate.done"' in line]
    assert done and done[0]["schema_before"] is None and done[0]["release"] == "r-one"


def test_release_steps_started_together_wait_for_each_other_and_all_succeed(
    base_env: dict[str, str], empty_database: str
) -> None:
    """Platforms may run the release step twice at once (a retried Job, two deploys). Lined up behind the
    migration lock (held here by the test), four release steps all wait; let go, they migrate one at a time:
    the first creates the schema, the others find it at head, and every release is recorded."""
    import subprocess
    import sys
    import time

    from satchel.adapters.db.migrate import MIGRATION_LOCK

    releases = [f"r-{n}" for n in range(4)]
    with psycopg.connect(empty_database, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK])
        command = [sys.executable, "-m", "satchel", "migrate"]
        envs = [{**base_env, "DATABASE_URL": empty_database, "RELEASE_ID": release} for release in releases]
        running = [
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for env in envs
        ]
        waiting_sql = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s AND NOT granted"
        deadline = time.monotonic() + 60
        while (waiting := holder.execute(waiting_sql, [MIGRATION_LOCK]).fetchone()) != (4,):
            assert time.monotonic() < deadline, f"only {waiting} release steps wait for the migration lock"
            assert all(p.poll() is None for p in running), "a release step ended without waiting for the lock"
            time.sleep(0.05)
        holder.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK])
    outcomes = [(process.wait(120), process.stderr.read() if process.stderr else "") for process in running]
    assert [code for code, _ in outcomes] == [0] * 4, outcomes
    with psycopg.connect(empty_database) as conn:
        version = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        recorded = conn.execute("SELECT release_id, schema_revision FROM releases").fetchall()
    assert version == [(head(),)]
    assert sorted(recorded) == [(release, head()) for release in releases]


def test_an_earlier_releases_migrate_leaves_a_later_schema_alone_and_succeeds(
    base_env: dict[str, str], empty_database: str
) -> None:
    """Rolling back runs the earlier release's release step against the later schema: it must not fail."""
    env = {**base_env, "DATABASE_URL": empty_database, "RELEASE_ID": "r-later"}
    assert run_satchel("migrate", env=env).returncode == 0
    with psycopg.connect(empty_database) as conn:  # as a later release's migration would leave it
        conn.execute("UPDATE alembic_version SET version_num = '0999'")
    rollback = run_satchel("migrate", env={**env, "RELEASE_ID": "r-earlier"})
    assert rollback.returncode == 0, rollback.stderr
    assert "Traceback" not in rollback.stderr
    events = {e["event"]: e for e in map(json.loads, rollback.stdout.splitlines())}
    assert events["migrate.schema_ahead"]["schema"] == "0999"
    assert events["migrate.done"]["schema_after"] == "0999"
    with psycopg.connect(empty_database) as conn:
        rows = conn.execute("SELECT release_id, schema_revision FROM releases ORDER BY id").fetchall()
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert rows[-1] == ("r-earlier", "0999")
    assert version == ("0999",)


@pytest.mark.parametrize("revision", ["0003x", "ab12cd34", "001"])
def test_migrate_refuses_a_schema_revision_that_is_no_release_of_satchel(
    base_env: dict[str, str], empty_database: str, revision: str
) -> None:
    """A typo, a branch's migration or damage is not taken for a later release: the release step stops."""
    env = {**base_env, "DATABASE_URL": empty_database, "RELEASE_ID": "r-one"}
    assert run_satchel("migrate", env=env).returncode == 0
    with psycopg.connect(empty_database) as conn:
        conn.execute("UPDATE alembic_version SET version_num = %s", [revision])
    refused = run_satchel("migrate", env=env)
    assert refused.returncode == 1
    assert f"schema revision {revision!r} is not one of this code's" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_release_step_blocked_by_a_held_table_gives_up_in_time_changes_nothing_and_runs_again_later(
    base_env: dict[str, str], empty_database: str
) -> None:
    """A migration waiting for a table makes every request that needs the table wait behind it; so it waits
    SATCHEL_MIGRATION_LOCK_TIMEOUT, then stops with one line and exit 75 (try again), leaving the schema and the
    releases as they were. The last migration's foreign key needs ``users``, held here as a transaction that
    wrote to it and has not ended holds it."""
    env = {**base_env, "DATABASE_URL": empty_database, "RELEASE_ID": "r-one", "SATCHEL_MIGRATION_LOCK_TIMEOUT": "1"}
    alembic.upgrade(alembic_config(empty_database), revisions()[-2])
    with psycopg.connect(empty_database) as holder:
        holder.execute("LOCK TABLE users IN ROW EXCLUSIVE MODE")
        blocked = run_satchel("migrate", env=env, timeout=30)
        assert blocked.returncode == 75, blocked.stderr
        assert blocked.stderr.startswith("satchel migrate: a table this release changes stayed held by another")
        assert len(blocked.stderr.strip().splitlines()) == 1 and "Traceback" not in blocked.stderr
        holder.rollback()
    assert current_revision(empty_database) == revisions()[-2]
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT count(*) FROM releases").fetchone() == (0,)
    again = run_satchel("migrate", env=env)
    assert again.returncode == 0, again.stderr
    assert current_revision(empty_database) == head()


@pytest.mark.parametrize("command", [["users", "list"], ["jobs", "retry", "a" * 32], ["purge-expired"]])
def test_an_admin_command_with_its_database_down_says_so_in_one_line_and_exits_69(
    base_env: dict[str, str], command: list[str]
) -> None:
    env = {**base_env, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/satchel"}  # nothing listens

    result = run_satchel(*command, env=env)

    assert result.returncode == 69, result.stderr  # sysexits.h EX_UNAVAILABLE: try again later
    assert result.stderr.strip() == "satchel: database is unavailable (OperationalError); try again once it is back"
    assert "Traceback" not in result.stdout + result.stderr


def test_users_and_tokens_are_managed_by_one_off_commands(base_env: dict[str, str]) -> None:
    import subprocess
    import sys

    import httpx

    from support.processes import SatchelProcess, create_account

    token = create_account(base_env, "ops@example.test")
    admin = subprocess.run(
        [sys.executable, "-m", "satchel", "users", "create", "root@example.test", "--admin", "--password-stdin"],
        input="an admin password\n", env=base_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert admin.returncode == 0 and "admin" in admin.stdout
    listed = run_satchel("users", "list", env=base_env).stdout
    assert "ops@example.test\tuser\tactive" in listed and "root@example.test\tadmin\tactive" in listed
    duplicate = subprocess.run(
        [sys.executable, "-m", "satchel", "users", "create", "ops@example.test", "--password-stdin"],
        input="another password\n", env=base_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr and "Traceback" not in duplicate.stderr

    web = SatchelProcess("web", env=base_env)
    try:
        url = f"http://127.0.0.1:{base_env['PORT']}"
        web.wait_http(f"{url}/healthz")
        assert httpx.get(f"{url}/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert run_satchel("users", "disable", "ops@example.test", env=base_env).returncode == 0
        assert httpx.get(f"{url}/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    finally:
        web.stop()
    assert "ops@example.test\tuser\tdisabled" in run_satchel("users", "list", env=base_env).stdout


def test_purge_expired_is_a_one_off_command_with_a_dry_run(base_env: dict[str, str], own_database: str) -> None:
    import httpx

    from support.processes import SatchelProcess, create_account

    env = {**base_env, "DATABASE_URL": own_database}
    token = create_account(env, "purger@example.test")
    web = SatchelProcess("web", env=env)
    try:
        url = f"http://127.0.0.1:{env['PORT']}"
        web.wait_http(f"{url}/healthz")
        auth = {"Authorization": f"Bearer {token}"}
        file_id = httpx.put(f"{url}/api/files/old.txt", content=b"old", headers=auth, params={"share": "false"}).json()[
            "file"
        ]["id"]
        share = httpx.post(
            f"{url}/api/shares", json={"file_ids": [file_id], "delete_files_when_done": True}, headers=auth
        ).json()
        httpx.delete(f"{url}/api/shares/{share['id']}", headers=auth)  # revoked: the link has ended
    finally:
        web.stop()

    def purge(*flags: str) -> dict[str, object]:
        result = run_satchel("purge-expired", *flags, env=env)
        assert result.returncode == 0, result.stderr
        return next(json.loads(line) for line in result.stdout.splitlines() if '"purge.done"' in line)

    dry = purge("--dry-run")
    assert dry["shares"] == 1 and dry["files"] == 1
    done = purge()
    assert done["shares"] == 1 and done["files"] == 1 and done["freed_bytes"] == 3
    assert purge()["shares"] == 0, "a second run finds nothing"
    objects = [p for p in (Path(env["STORAGE_URL"].removeprefix("file://"))).rglob("*") if p.is_file()]
    assert objects == []


def test_storage_verify_removes_old_orphans_but_not_uploads_in_flight(
    base_env: dict[str, str], own_database: str
) -> None:
    import os
    import time

    env = {**base_env, "DATABASE_URL": own_database}
    root = Path(env["STORAGE_URL"].removeprefix("file://"))
    orphan = root / "files" / "2020" / "01" / "orphan"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"nobody's")
    old = time.time() - 7200
    os.utime(orphan, (old, old))
    fresh = root / "files" / "2020" / "01" / "in-flight"
    fresh.write_bytes(b"an upload about to be recorded")

    found = run_satchel("storage", "verify", env=env)
    assert found.returncode == 1 and "files/2020/01/orphan" in found.stdout
    assert "in-flight" not in found.stdout, "young objects may belong to an upload in progress"
    fixed = run_satchel("storage", "verify", "--fix", env=env)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert '"event": "storage.verified"' in fixed.stdout, "a JSON event, not a progress bar, when not on a terminal"
    assert not orphan.exists() and fresh.exists()
    assert run_satchel("storage", "verify", "--deep", env=env).returncode == 0


def test_shell_has_settings_services_and_run(base_env: dict[str, str]) -> None:
    import subprocess
    import sys

    from support.processes import create_account

    create_account(base_env, "shell@example.test")
    script = "print(settings.release_id)\nprint([u.email for u in run(services.users.everyone())])\n"
    result = subprocess.run(
        [sys.executable, "-m", "satchel", "shell"], input=script, env=base_env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert base_env["RELEASE_ID"] in result.stdout and "shell@example.test" in result.stdout


def test_jobs_list_shows_failed_jobs_and_retry_puts_one_back_in_the_outbox(
    base_env: dict[str, str], own_database: str
) -> None:
    env = {**base_env, "DATABASE_URL": own_database}
    with psycopg.connect(own_database) as conn:
        conn.execute(
            "INSERT INTO jobs (id, kind, queue, payload, status, attempts, max_attempts, last_error) VALUES "
            "('a' || repeat('0', 31), 'mail', 'mail', '{}', 'failed', 5, 5, 'SMTPServerDisconnected: gone\nmore'),"
            "('b' || repeat('0', 31), 'ping', 'default', '{}', 'done', 1, 5, NULL)"
        )
    failed_id, done_id = "a" + "0" * 31, "b" + "0" * 31

    listed = run_satchel("jobs", "list", "--failed", env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [f"{failed_id}\tmail\tmail\tfailed\t5/5\tSMTPServerDisconnected: gone"]
    every = run_satchel("jobs", "list", env=env).stdout
    assert failed_id in every and f"{done_id}\tping\tdefault\tdone\t1/5" in every

    retried = run_satchel("jobs", "retry", failed_id, env=env)
    assert retried.returncode == 0, retried.stderr
    *events, said = retried.stdout.strip().splitlines()
    assert said == f"job {failed_id} is pending again"
    retry_events = [json.loads(line) for line in events]
    assert [(e["event"], e["subject"]) for e in retry_events] == [("audit.job.retried", f"job:{failed_id}")], (
        "the retry is on the audit trail and in the admin process's log, before the command's own line"
    )
    with psycopg.connect(own_database) as conn:
        row = conn.execute("SELECT status, attempts FROM jobs WHERE id = %s", [failed_id]).fetchone()
    assert row == ("pending", 0), "back in the outbox with a fresh set of attempts"
    assert run_satchel("jobs", "list", "--failed", env=env).stdout == ""

    for not_failed in (done_id, failed_id, "no-such-job"):  # done, pending again, missing: nothing to retry
        refused = run_satchel("jobs", "retry", not_failed, env=env)
        assert refused.returncode != 0 and "Traceback" not in refused.stderr
        assert f"No failed job {not_failed}." in refused.stderr + refused.stdout


def test_storage_verify_reports_progress_as_json_and_deep_finds_bytes_that_changed(
    base_env: dict[str, str], own_database: str, tmp_path: Path
) -> None:
    """Without a terminal, a long check says how far it got as JSON events; ``--deep`` rereads every byte, so it
    finds a file whose bytes changed though its size did not, which the quick check cannot."""
    import httpx

    from support.processes import SatchelProcess, create_account

    env = {**base_env, "DATABASE_URL": own_database}
    token = create_account(env, "verifier@example.test")
    web = SatchelProcess("web", env=env)
    try:
        url = f"http://127.0.0.1:{env['PORT']}"
        web.wait_http(f"{url}/healthz")
        auth = {"Authorization": f"Bearer {token}"}
        for name in ("a.txt", "b.txt", "c.txt"):
            response = httpx.put(
                f"{url}/api/files/{name}", content=b"original", headers=auth, params={"share": "false"}
            )
            assert response.status_code == 201
        file_id = response.json()["file"]["id"]
    finally:
        web.stop()

    def verify(*flags: str) -> tuple[int, list[dict[str, object]]]:
        result = run_satchel("storage", "verify", *flags, env=env)
        assert "Traceback" not in result.stderr
        return result.returncode, [json.loads(line) for line in result.stdout.splitlines()]

    code, events = verify("--deep")
    assert code == 0
    progress = [e for e in events if e["event"] == "progress"]
    assert progress, "no progress events"
    assert {k: progress[-1][k] for k in ("task", "stage", "done", "total")} == {
        "task": "verify",
        "stage": "files",
        "done": 3,
        "total": 3,
    }

    with psycopg.connect(own_database) as conn:
        key = conn.execute("SELECT storage_key FROM files WHERE id = %s", [file_id]).fetchone()
    stored = tmp_path / "objects" / key[0]
    stored.write_bytes(b"0riginal")  # same size, other bytes: bit rot, or someone's hand

    code, events = verify()
    assert code == 0, "the quick check compares sizes only"
    code, events = verify("--deep")
    [verified] = [e for e in events if e["event"] == "storage.verified"]
    assert code == 1 and verified["mismatched"] == [file_id]


def test_without_release_id_the_release_is_the_git_commit_and_dev_outside_a_checkout(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    """Factor I: every deploy of one codebase says which commit it runs, even when nobody set RELEASE_ID."""
    import shutil
    import subprocess
    import sys

    env = {k: v for k, v in base_env.items() if k != "RELEASE_ID"}
    root = Path(__file__).resolve().parents[2]
    commit = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    version = run_satchel("--version", env=env)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"satchel 0.1.0 (release {commit})"

    shutil.copytree(root / "src" / "satchel", tmp_path / "satchel")  # the same code, outside any checkout
    elsewhere = subprocess.run(
        [sys.executable, "-c", "from satchel.runtime.release import current_release; print(current_release())"],
        env={**env, "PYTHONPATH": str(tmp_path), "GIT_CEILING_DIRECTORIES": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert elsewhere.stdout.strip() == "dev", elsewhere.stderr
