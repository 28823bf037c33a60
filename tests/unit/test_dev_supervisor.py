"""How ``satchel dev`` divides one machine between its process types."""

from __future__ import annotations

from satchel.cli.dev import process_environments


def test_dev_gives_web_and_worker_a_metrics_port_each() -> None:
    env = process_environments({"PORT": "8000", "SATCHEL_METRICS_PORT": "9100", "SECRET_KEY": "k"})
    assert env["web"]["SATCHEL_METRICS_PORT"] == "9100"
    assert env["worker"]["SATCHEL_METRICS_PORT"] == "9101"
    assert env["web"]["SECRET_KEY"] == env["worker"]["SECRET_KEY"] == "k"


def test_dev_without_metrics_runs_both_in_the_same_environment() -> None:
    env = process_environments({"PORT": "8000"})
    assert env["web"] == env["worker"] == {"PORT": "8000"}
