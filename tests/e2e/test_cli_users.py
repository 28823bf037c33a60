"""``satchel users invite|quota|admin``: accounts managed by one-off commands, as an operator of the release would.

An admin process logs JSON events on stdout too (factor XI): each change's ``audit.<action>`` line comes before
the command's own line, so these tests read the command's own lines apart from the JSON ones.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import httpx
import pytest

from support.processes import SatchelProcess, create_account, run_satchel

PASSWORD = "correct horse battery staple"


def own_lines(stdout: str) -> list[str]:
    """What the command itself printed: every stdout line that is not a JSON log event."""
    return [line for line in stdout.splitlines() if line.strip() and not line.startswith("{")]


def logged(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.fixture
def env(base_env: dict[str, str], own_database: str) -> dict[str, str]:
    return {**base_env, "DATABASE_URL": own_database, "SATCHEL_SIGNUP": "invite"}


def test_users_invite_prints_the_link_which_opens_the_account_and_logs_no_token(env: dict[str, str]) -> None:
    invited = run_satchel("users", "invite", "Ines@Example.test", "--admin", env=env)
    assert invited.returncode == 0, invited.stderr
    [line] = own_lines(invited.stdout)
    prefix = f"invited ines@example.test as an administrator: http://localhost:{env['PORT']}/invite/"
    assert line.startswith(prefix) and "(works once, until " in line
    link = line.split(": ", 1)[1].split(" ", 1)[0]
    token = link.rsplit("/", 1)[1]
    [event] = [e for e in logged(invited.stdout) if e["event"] == "audit.admin.user_invited"]
    assert (event["actor_id"], event["client"], event["detail_address"]) == (None, "command line", "ines@example.test")
    assert token not in json.dumps(logged(invited.stdout)) and token not in invited.stderr

    web = SatchelProcess("web", env=env)
    try:
        web.wait_http(f"http://127.0.0.1:{env['PORT']}/healthz")
        page = httpx.get(link, headers={"Accept": "text/html"})
        assert (
            page.status_code == 200 and 'value="ines@example.test"' in page.text and "as an administrator" in page.text
        )
    finally:
        web.stop()

    again = run_satchel("users", "invite", "ines@example.test", env=env)
    assert again.returncode == 1 and "already has an invitation waiting" in again.stderr
    assert "Traceback" not in again.stderr


def test_users_invite_refuses_an_address_with_an_account_and_a_closed_server(env: dict[str, str]) -> None:
    create_account(env, "taken@example.test")
    taken = run_satchel("users", "invite", "taken@example.test", env=env)
    assert taken.returncode == 1 and taken.stderr.strip() == "satchel: taken@example.test already has an account."
    closed = run_satchel("users", "invite", "new@example.test", env={**env, "SATCHEL_SIGNUP": "closed"})
    assert closed.returncode == 1 and "SATCHEL_SIGNUP=closed" in closed.stderr
    assert own_lines(closed.stdout) == []


def test_users_quota_takes_a_size_with_its_unit_and_refuses_one_without_a_binary_unit(env: dict[str, str]) -> None:
    create_account(env, "quota@example.test")
    set_quota = run_satchel("users", "quota", "quota@example.test", "100GiB", env=env)
    assert set_quota.returncode == 0, set_quota.stderr
    assert own_lines(set_quota.stdout) == ["quota@example.test may store 100 GiB (107374182400 bytes)"]
    [event] = [e for e in logged(set_quota.stdout) if e["event"] == "audit.admin.quota_changed"]
    assert (event["detail_quota_bytes"], event["detail_previous_quota_bytes"]) == (100 * 1024**3, 50 * 1024**3)

    decimal = run_satchel("users", "quota", "quota@example.test", "100GB", env=env)
    assert decimal.returncode == 2 and "binary unit: B, KiB, MiB, GiB or TiB" in decimal.stderr
    nobody = run_satchel("users", "quota", "nobody@example.test", "1GiB", env=env)
    assert nobody.returncode == 1 and "No account for nobody@example.test." in nobody.stderr
    assert "quota@example.test\tuser\tactive\t0/107374182400 bytes" in run_satchel("users", "list", env=env).stdout


def test_users_admin_grants_and_revokes_and_create_takes_a_quota(env: dict[str, str]) -> None:
    command = ["users", "create", "ops@example.test", "--quota", "1.5TiB", "--password-stdin"]
    made = subprocess.run(
        [sys.executable, "-m", "satchel", *command],
        input=PASSWORD + "\n", env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    [line] = own_lines(made.stdout)
    assert line.startswith("created ops@example.test (id ")
    [created] = [e for e in logged(made.stdout) if e["event"] == "audit.admin.user_created"]
    assert created["detail_quota_bytes"] == 3 * 1024**4 // 2 and PASSWORD not in made.stdout

    granted = run_satchel("users", "admin", "ops@example.test", "--grant", env=env)
    assert own_lines(granted.stdout) == ["ops@example.test is an administrator"]
    assert "ops@example.test\tadmin\tactive" in run_satchel("users", "list", env=env).stdout
    revoked = run_satchel("users", "admin", "ops@example.test", "--revoke", env=env)
    assert own_lines(revoked.stdout) == ["ops@example.test is no longer an administrator"]
    unchanged = run_satchel("users", "admin", "ops@example.test", "--revoke", env=env)
    assert unchanged.returncode == 0 and logged(unchanged.stdout) == [], "nothing changed: nothing on the trail"
    asked = run_satchel("users", "admin", "ops@example.test", env=env)
    assert asked.returncode == 2 and "--grant" in asked.stderr

    trail = run_satchel("audit", "list", "--subject", f"user:{created['subject'].split(':')[1]}", env=env)
    actions = [row.split("\t")[1] for row in own_lines(trail.stdout)]
    assert actions == ["admin.admin_revoked", "admin.admin_granted", "admin.user_created"]
    assert all("\tcommand line\t" in row for row in own_lines(trail.stdout))
