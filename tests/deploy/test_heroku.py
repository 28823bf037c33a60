"""app.json and the Procfile describe a Satchel a Heroku-style platform can build and run.

The schema (written from the documented app.json fields) says the manifest is well-formed; these tests
check it against Satchel itself: its settings, its commands and its process formation.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from satchel.adapters.jobs import QUEUES
from satchel.cli import app
from satchel.settings import Settings, load_settings

from support.procfile import procfile

ROOT = Path(__file__).resolve().parents[2]
APP_JSON = ROOT / "app.json"
SCHEMA = Path(__file__).parent / "schemas" / "app-json.schema.json"
TOOLS = Path(sys.executable).parent

# The config var each add-on attaches (unless the manifest names the attachment with "as").
ADDON_VARIABLES = {"heroku-postgresql": "DATABASE_URL", "heroku-redis": "REDIS_URL"}
# What those add-ons hand over: PostgreSQL under the postgres:// scheme, Redis over TLS.
ADDON_EXAMPLES = {
    "DATABASE_URL": "postgres://u1a2b3:p4ssw0rd@ec2-203-0-113-7.compute-1.example.com:5432/d9f8e7",
    "REDIS_URL": "rediss://:p4ssw0rd@ec2-203-0-113-8.compute-1.example.com:12345",
}
# Seconds between SIGTERM and SIGKILL when a dyno stops.
DYNO_STOP_SECONDS = 30


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    document = json.loads(APP_JSON.read_text())
    assert isinstance(document, dict)
    return document


def aliases() -> set[str]:
    return {field.alias or name.upper() for name, field in Settings.model_fields.items()}


def addon_variables(manifest: dict[str, Any]) -> set[str]:
    found = set()
    for addon in manifest.get("addons", []):
        plan = addon if isinstance(addon, str) else addon["plan"]
        service = plan.partition(":")[0]
        if isinstance(addon, dict) and "as" in addon:
            found.add(f"{addon['as']}_URL")
        elif service in ADDON_VARIABLES:
            found.add(ADDON_VARIABLES[service])
    return found


def test_app_json_follows_the_app_json_format() -> None:
    checker = TOOLS / "check-jsonschema"
    if not checker.is_file():
        pytest.fail(f"check-jsonschema is missing from {TOOLS}: install the dev dependencies (uv sync)")
    result = subprocess.run([checker, "--schemafile", SCHEMA, APP_JSON], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_app_json_names_no_outside_address(manifest: dict[str, Any]) -> None:
    assert not {"repository", "website", "logo", "success_url"} & set(manifest)
    assert not re.search(r"https?://[A-Za-z0-9]", APP_JSON.read_text()), "no URL the project cannot vouch for"


def test_every_variable_is_a_satchel_setting_with_a_description(manifest: dict[str, Any]) -> None:
    known = aliases()
    for name, entry in manifest["env"].items():
        assert name in known or name.removesuffix("_FILE") in known, f"{name} is no Satchel setting"
        assert isinstance(entry, dict) and entry.get("description"), f"{name} says what it is for"


def test_every_required_setting_is_set_by_the_manifest_or_an_add_on(manifest: dict[str, Any]) -> None:
    required = {field.alias for field in Settings.model_fields.values() if field.is_required()}
    assert required >= {"DATABASE_URL", "REDIS_URL", "STORAGE_URL", "SECRET_KEY"}
    set_here = {
        name
        for name, entry in manifest["env"].items()
        if "value" in entry or "generator" in entry or entry.get("required", True)  # required: asked at creation
    }
    provided = set_here | addon_variables(manifest)
    assert required <= provided, f"nothing sets {sorted(required - provided)}"
    assert addon_variables(manifest) >= {"DATABASE_URL", "REDIS_URL"}


def test_the_secret_key_is_generated_per_app(manifest: dict[str, Any]) -> None:
    entry = manifest["env"]["SECRET_KEY"]
    assert entry["generator"] == "secret" and "value" not in entry


def test_storage_must_be_given_and_cannot_be_the_dyno_disk(manifest: dict[str, Any]) -> None:
    entry = manifest["env"]["STORAGE_URL"]
    assert entry["required"] is True and "value" not in entry, "the operator names the bucket"
    assert "s3://" in entry["description"] and "ephemeral" in entry["description"]
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert manifest["env"][name]["required"] is True, name


def test_processes_stop_within_the_platforms_grace(manifest: dict[str, Any]) -> None:
    env = manifest["env"]
    assert float(env["WORKER_GRACE"]["value"]) < DYNO_STOP_SECONDS, "running jobs are handed back before SIGKILL"
    assert float(env["GRACEFUL_TIMEOUT"]["value"]) < DYNO_STOP_SECONDS


def test_a_deploy_from_the_manifest_is_a_valid_configuration(
    manifest: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = {"STORAGE_URL": "s3://satchel-files", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "x" * 40}
    environment = {"PORT": "31337"}  # the platform's
    for name, entry in manifest["env"].items():
        if "value" in entry:
            environment[name] = entry["value"]
        elif entry.get("generator") == "secret":
            environment[name] = secrets.token_hex(32)
        elif entry.get("required", True):
            environment[name] = asked[name]
    environment |= {name: ADDON_EXAMPLES[name] for name in addon_variables(manifest)}
    with monkeypatch.context() as patch:
        for key in Settings.model_fields:
            alias = Settings.model_fields[key].alias or key.upper()
            patch.delenv(alias, raising=False)
            patch.delenv(f"{alias}_FILE", raising=False)
        for key, value in environment.items():
            patch.setenv(key, value)
        patch.chdir(tmp_path)  # no .env in a slug
        settings = load_settings()
    assert settings.storage_url.startswith("s3://")
    # The router connects from private addresses: believed (https is seen as https), but never '*', where the
    # client's own leftmost X-Forwarded-For entry would pick the address that rate limits count by.
    trusted = [ipaddress.ip_network(n) for n in settings.forwarded_allow_ips.split(",")]
    assert trusted and all(network.is_private for network in trusted)


def test_the_formation_has_the_procfiles_process_types(manifest: dict[str, Any]) -> None:
    processes = set(procfile()) - {"release"}
    assert set(manifest["formation"]) == processes
    for name, entry in manifest["formation"].items():
        assert isinstance(entry["quantity"], int), name
    assert manifest["formation"]["web"]["quantity"] >= 1


def test_the_procfile_runs_migrations_in_the_release_phase() -> None:
    assert procfile()["release"] == ["satchel", "migrate"]


@pytest.mark.parametrize("process", sorted(procfile()))
def test_each_procfile_command_is_a_real_satchel_command(process: str) -> None:
    argv = procfile()[process]
    assert argv[0] == "satchel"
    # --help is eager: the arguments before it are parsed (an unknown command or option fails) and nothing runs.
    result = CliRunner().invoke(app, [*argv[1:], "--help"])
    assert result.exit_code == 0, result.output


def test_the_worker_process_types_consume_every_queue_between_them() -> None:
    consumed: list[str] = []
    for argv in procfile().values():
        if argv[1] == "worker":
            consumed += argv[argv.index("--queues") + 1].split(",") if "--queues" in argv else list(QUEUES)
    assert sorted(consumed) == sorted(QUEUES), "each queue has exactly one process type: a job never waits unseen"


def test_the_python_buildpack_finds_its_version_and_the_lock() -> None:
    version = (ROOT / ".python-version").read_text().strip()
    assert re.fullmatch(r"3\.\d+", version), "major.minor: security patches arrive without a change here"
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    minimum = tuple(int(part) for part in requires.removeprefix(">=").split("."))
    assert tuple(int(part) for part in version.split(".")) >= minimum
    assert (ROOT / "uv.lock").is_file(), "uv projects are installed from uv.lock"
