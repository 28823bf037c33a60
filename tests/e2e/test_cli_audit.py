"""``satchel audit list`` and ``satchel audit prune``: the trail read and pruned by one-off commands."""

from __future__ import annotations

import json

import psycopg

from support.processes import run_satchel


def test_audit_list_filters_the_trail_and_prune_deletes_what_is_older(
    base_env: dict[str, str], own_database: str
) -> None:
    env = {**base_env, "DATABASE_URL": own_database}
    with psycopg.connect(own_database) as conn:
        conn.execute(
            "INSERT INTO audit_events (at, actor_email, action, subject, client, details) VALUES "
            "('2026-01-01T10:00:00Z', 'ann@example.com', 'file.uploaded', 'f1', '192.0.2.1', '{\"name\": \"a.txt\"}'),"
            "('2026-03-01T10:00:00Z', 'ann@example.com', 'file.deleted', 'f1', '192.0.2.1', '{}'),"
            "('2026-03-02T10:00:00Z', 'bob@example.com', 'file.uploaded', 'f2', NULL, '{}')"
        )

    listed = run_satchel("audit", "list", "--user", "ANN@example.com", env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        "2026-03-01T10:00:00+00:00\tfile.deleted\tann@example.com\tf1\t192.0.2.1\t",
        "2026-01-01T10:00:00+00:00\tfile.uploaded\tann@example.com\tf1\t192.0.2.1\tname=a.txt",
    ]
    as_json = run_satchel("audit", "list", "--action", "file.uploaded", "--since", "2026-02-01", "--json", env=env)
    (event,) = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert (event["actor_email"], event["subject"], event["client"]) == ("bob@example.com", "f2", None)

    bad = run_satchel("audit", "list", "--action", "file.eaten", env=env)
    assert bad.returncode == 1 and "Filter by one of the actions" in bad.stderr and "Traceback" not in bad.stderr

    pruned = run_satchel("audit", "prune", "--before", "2026-02-15", env=env)
    assert pruned.returncode == 0, pruned.stderr
    assert json.loads(pruned.stdout) == {"pruned": 1, "before": "2026-02-15T00:00:00+00:00"}
    assert len(run_satchel("audit", "list", env=env).stdout.splitlines()) == 2
