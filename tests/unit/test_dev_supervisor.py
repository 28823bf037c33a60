"""How ``satchel dev`` divides one machine between its process types."""

from __future__ import annotations

from pathlib import Path

from satchel.cli.dev import Supervisor, process_environments


def test_dev_gives_web_and_worker_a_metrics_port_each() -> None:
    env = process_environments({"PORT": "8000", "SATCHEL_METRICS_PORT": "9100", "SECRET_KEY": "k"})
    assert env["web"]["SATCHEL_METRICS_PORT"] == "9100"
    assert env["worker"]["SATCHEL_METRICS_PORT"] == "9101"
    assert env["web"]["SECRET_KEY"] == env["worker"]["SECRET_KEY"] == "k"


def test_dev_without_metrics_runs_both_in_the_same_environment() -> None:
    env = process_environments({"PORT": "8000"})
    assert env["web"] == env["worker"] == {"PORT": "8000"}


def test_dev_opens_sign_up_so_the_first_run_is_open_the_url_and_create_an_account(tmp_path: Path) -> None:
    given = {"DATABASE_URL": "postgresql://db/satchel", "REDIS_URL": "redis://cache:6379/0"}
    assert Supervisor(given, tmp_path).prepare_environment()["SATCHEL_SIGNUP"] == "open"
    chosen = Supervisor({**given, "SATCHEL_SIGNUP": "invite"}, tmp_path).prepare_environment()
    assert chosen["SATCHEL_SIGNUP"] == "invite", "an operator trying the policy in dev keeps their choice"
