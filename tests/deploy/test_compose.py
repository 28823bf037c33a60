"""compose.yaml describes a Satchel that can run: checked offline, since no container engine runs here.

The Compose schema says the file is well-formed. These tests check what it cannot: that the services agree
with the Procfile, the Dockerfile and each other, that no secret is written into the file, and that the
environment each Satchel service gets, with the secret files made exactly as docs/deploy/compose.md tells
the operator, is a configuration Satchel accepts.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from satchel.settings import SECRET_NAMES, Settings, load_settings

from support.procfile import procfile

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
GUIDE = ROOT / "docs" / "deploy" / "compose.md"
TOOLS = Path(sys.executable).parent
SECRETS_MOUNT = "/run/secrets/"
RELEASE_ID = "4f9c2e1a7b3d"
WORKERS = ("worker", "scan", "media")

# Settings that are credentials, or carry one here: only ever NAME_FILE. (Any URL with a password is refused too.)
CREDENTIALS = SECRET_NAMES | {"DATABASE_URL", "AWS_ACCESS_KEY_ID"}

Service = dict[str, Any]


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error} and $$."""

    def substitute(match: re.Match[str]) -> str:
        name, operator, argument = match["name"], match["op"] or "", match["arg"] or ""
        value = variables.get(name)
        unset = value is None or (operator.startswith(":") and value == "")
        if operator.endswith("?") and unset:
            raise AssertionError(f"Compose would stop: {name}: {argument}")
        if operator.endswith("-") and unset:
            return argument
        return value or ""

    pattern = r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    return re.sub(pattern, substitute, value.replace("$$", "\0")).replace("\0", "$")


def image_environment(build_args: dict[str, str]) -> dict[str, str]:
    """The ENV of the Dockerfile's last stage: what every container of the image starts with."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    final_stage = re.split(r"^FROM\s", text, flags=re.MULTILINE)[-1]
    found: dict[str, str] = {}
    for line in final_stage.splitlines():
        if line.startswith("ENV "):
            for token in shlex.split(line[4:]):
                name, _, value = token.partition("=")
                found[name] = re.sub(r"\$\{(\w+)\}", lambda m: build_args.get(m[1], ""), value)
    return found


def seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a Compose duration: {duration}"
    return sum(float(n) * units[u] for n, u in parts)


def as_mapping(environment: dict[str, Any] | list[str] | None) -> dict[str, str]:
    if isinstance(environment, list):
        return dict(item.partition("=")[::2] for item in environment)
    return {k: "" if v is None else str(v) for k, v in (environment or {}).items()}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Service]:
    return compose["services"]


@pytest.fixture(scope="module")
def satchel(services: dict[str, Service]) -> dict[str, Service]:
    """The services built from the Dockerfile: Satchel's process types."""
    return {name: service for name, service in services.items() if "build" in service}


@pytest.fixture(scope="module")
def backing(services: dict[str, Service], satchel: dict[str, Service]) -> dict[str, Service]:
    return {name: service for name, service in services.items() if name not in satchel}


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The operator's secrets/, made by running the guide's script as written."""
    if shutil.which("openssl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("openssl is needed to run the secrets script of docs/deploy/compose.md")
        pytest.skip("openssl is not installed; the guide's secrets script needs it")
    guide = GUIDE.read_text()
    section = guide[guide.index("## Create the secrets") :]
    script = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert script, "the guide shows the commands that create the secrets"
    checkout = tmp_path_factory.mktemp("checkout")
    subprocess.run(["bash", "-euo", "pipefail", "-c", script[1]], cwd=checkout, check=True, timeout=60)
    return checkout / "secrets"


@pytest.fixture(scope="module")
def service_environments(
    compose: dict[str, Any], satchel: dict[str, Service], secrets_dir: Path
) -> dict[str, dict[str, str]]:
    """Each Satchel service's environment as its container sees it, secret paths pointing at the operator's files."""
    mounted = {
        SECRETS_MOUNT + name: secrets_dir.parent / definition["file"] for name, definition in compose["secrets"].items()
    }
    variables = {"RELEASE_ID": RELEASE_ID}
    environments = {}
    for name, service in satchel.items():
        build_args = {k: interpolate(v, variables) for k, v in service["build"]["args"].items()}
        environment = image_environment(build_args)
        for key, value in as_mapping(service.get("environment")).items():
            value = interpolate(value, variables)
            environment[key] = str(mounted.get(value, value))
        environments[name] = environment
    return environments


def load_in(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch, cwd: Path) -> Settings:
    """Settings built from exactly ``environment``, as a container would build them."""
    with monkeypatch.context() as patch:
        for key in list(os.environ):
            patch.delenv(key)
        for key, value in environment.items():
            patch.setenv(key, value)
        patch.chdir(cwd)  # the image's working directory holds no .env
        return load_settings()


def test_the_compose_file_passes_the_compose_specification_schema() -> None:
    checker = TOOLS / "check-jsonschema"
    if not checker.is_file():
        pytest.fail(f"check-jsonschema is missing from {TOOLS}: install the dev dependencies (uv sync)")
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", COMPOSE], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_satchel_process_runs_the_one_image_built_for_the_release(satchel: dict[str, Service]) -> None:
    assert satchel, "the Satchel services are built from the Dockerfile"
    images = {service["image"] for service in satchel.values()}
    builds = {repr(service["build"]) for service in satchel.values()}
    assert len(images) == 1 and len(builds) == 1, "one image, one build, shared by every process type"
    (image,) = images
    build = next(iter(satchel.values()))["build"]
    assert build["context"] == "." and build.get("dockerfile", "Dockerfile") == "Dockerfile"
    assert interpolate(image, {"RELEASE_ID": RELEASE_ID}) == f"satchel:{RELEASE_ID}", "the tag names the release"
    assert interpolate(build["args"]["RELEASE_ID"], {"RELEASE_ID": RELEASE_ID}) == RELEASE_ID
    with pytest.raises(AssertionError, match="RELEASE_ID"):
        interpolate(image, {})  # a release is never built or run without its id


def test_the_process_types_are_the_procfiles_with_its_commands(satchel: dict[str, Service]) -> None:
    processes = procfile()
    assert set(satchel) == set(processes)
    for name, service in satchel.items():
        command = service["command"]
        assert isinstance(command, list), f"{name}: exec form, so satchel stays PID 1"
        assert ["satchel", *command] == processes[name], name


def test_release_migrates_once_postgresql_is_healthy_and_every_process_waits_for_it(
    satchel: dict[str, Service],
) -> None:
    release = satchel["release"]
    assert release["command"] == ["migrate"]
    assert release["restart"] == "no", "a one-off: it runs to completion, once per up"
    assert release["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name, service in satchel.items():
        if name != "release":
            assert service["depends_on"]["release"]["condition"] == "service_completed_successfully", name


def test_dependencies_wait_only_on_health_the_services_report(services: dict[str, Service]) -> None:
    for name, service in services.items():
        for target, dependency in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on {target}, which is not defined"
            if dependency["condition"] == "service_healthy":
                assert "test" in services[target].get("healthcheck", {}), f"{target} has no healthcheck"


def test_every_backing_service_reports_its_health(backing: dict[str, Service]) -> None:
    for name, service in backing.items():
        check = service.get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"


def test_web_is_checked_by_the_images_healthcheck_and_one_offs_and_workers_by_none(
    satchel: dict[str, Service],
) -> None:
    assert "healthcheck" not in satchel["web"], "the image's HEALTHCHECK on /healthz applies"
    assert "HEALTHCHECK" in (ROOT / "Dockerfile").read_text()
    for name in ("release", *WORKERS):
        assert satchel[name]["healthcheck"] == {"disable": True}, f"{name} serves no /healthz"


def test_every_stateful_service_keeps_its_data_in_a_named_volume(
    compose: dict[str, Any], backing: dict[str, Service], satchel: dict[str, Service]
) -> None:
    named = set(compose["volumes"])
    for name, service in backing.items():
        sources = [str(volume).partition(":")[0] for volume in service.get("volumes", [])]
        assert sources, f"{name} keeps state and needs a volume"
        assert all(source in named for source in sources), f"{name}: named volumes only, no bind mounts: {sources}"
    for name, service in satchel.items():
        assert not service.get("volumes"), f"{name} is stateless: its files go to object storage"
    used = {str(v).partition(":")[0] for service in backing.values() for v in service.get("volumes", [])}
    assert used == named, "every declared volume is used"


def test_satchel_processes_run_on_a_read_only_root_with_a_temporary_tmp(satchel: dict[str, Service]) -> None:
    for name, service in satchel.items():
        assert service["read_only"] is True, name
        assert service["tmpfs"] == ["/tmp"], name


def test_web_is_published_on_the_port_it_listens_on(satchel: dict[str, Service]) -> None:
    port = image_environment({})["PORT"]
    (published,) = satchel["web"]["ports"]
    host, _, container = interpolate(published, {}).rpartition(":")
    assert container == port and host.isdigit()
    assert "PORT" not in as_mapping(satchel["web"].get("environment")), "the image's PORT is the one published"


def test_no_secret_is_written_in_any_environment(compose: dict[str, Any], services: dict[str, Service]) -> None:
    declared = set(compose["secrets"])
    for name, service in services.items():
        for key, value in as_mapping(service.get("environment")).items():
            where = f"{name}: {key}"
            if key.endswith("_FILE"):
                assert value.startswith(SECRETS_MOUNT), f"{where} reads a mounted secret"
                secret = value.removeprefix(SECRETS_MOUNT)
                assert secret in declared and secret in service.get("secrets", []), f"{where}: {secret} not mounted"
                continue
            assert key not in CREDENTIALS, f"{where}: use {key}_FILE"
            assert not re.search(r"(SECRET|PASSWORD|TOKEN)", key), f"{where} looks like a secret"
            assert urlsplit(value).password is None, f"{where}: a URL with a password"
        for env_file in service.get("env_file", []):
            assert str(env_file).startswith("./secrets/"), f"{name}: env files hold secrets, kept in secrets/"
    for definition in compose["secrets"].values():
        assert definition["file"].startswith("./secrets/"), definition
    assert "/secrets/" in (ROOT / ".gitignore").read_text().splitlines(), "the secrets directory is git-ignored"


def test_the_documented_secrets_are_private_and_consistent(compose: dict[str, Any], secrets_dir: Path) -> None:
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700, "other users of the host cannot list or read them"
    for path in secrets_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, f"{path.name}: readable by the container's uid 10001"
    read = {path.name: path.read_text().rstrip("\n") for path in secrets_dir.iterdir()}
    for definition in compose["secrets"].values():
        assert Path(definition["file"]).name in read, f"the guide makes {definition['file']}"
    database = urlsplit(read["database_url"])
    assert database.password == read["postgres_password"]
    garage = dict(line.split("=", 1) for line in read["garage.env"].splitlines())
    assert garage["GARAGE_DEFAULT_ACCESS_KEY"] == read["aws_access_key_id"]
    assert garage["GARAGE_DEFAULT_SECRET_KEY"] == read["aws_secret_access_key"]
    # The object store accepts only keys of its own shape: GK and 12 bytes, a 32-byte secret, in hex.
    assert re.fullmatch(r"GK[0-9a-f]{24}", read["aws_access_key_id"])
    assert re.fullmatch(r"[0-9a-f]{64}", read["aws_secret_access_key"])
    assert re.fullmatch(r"[0-9a-f]{64}", garage["GARAGE_RPC_SECRET"])


@pytest.mark.parametrize("process", ["release", "web", *WORKERS])
def test_each_satchel_service_gets_a_valid_configuration(
    process: str,
    service_environments: dict[str, dict[str, str]],
    secrets_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_in(service_environments[process], monkeypatch, tmp_path)
    assert settings.release_id == RELEASE_ID
    assert settings.secret_key.get_secret_value() == (secrets_dir / "secret_key").read_text().rstrip("\n")
    assert urlsplit(settings.database_url).hostname == "postgres"
    assert settings.storage_url.startswith("s3://"), "stateless processes: files go to the object store"
    assert settings.aws_secret_access_key is not None and settings.aws_access_key_id


def test_backing_service_urls_name_services_of_this_file(
    services: dict[str, Service], service_environments: dict[str, dict[str, str]], compose: dict[str, Any]
) -> None:
    environment = service_environments["web"]
    for variable in ("REDIS_URL", "AWS_ENDPOINT_URL", "EMAIL_URL", "CLAMAV_URL"):
        assert urlsplit(environment[variable]).hostname in services, variable
    postgres = as_mapping(services["postgres"]["environment"])
    database = urlsplit(Path(environment["DATABASE_URL_FILE"]).read_text().strip())
    assert (database.hostname, database.port) == ("postgres", 5432)
    assert (database.username, database.path) == (postgres["POSTGRES_USER"], "/" + postgres["POSTGRES_DB"])
    garage = as_mapping(services["garage"]["environment"])
    assert urlsplit(environment["STORAGE_URL"]).hostname == garage["GARAGE_DEFAULT_BUCKET"]
    config = compose["configs"]["garage-toml"]["content"]
    assert f's3_region = "{environment["AWS_DEFAULT_REGION"]}"' in config, "requests are signed for its region"


def test_grace_periods_outlast_the_time_processes_take_to_stop(
    satchel: dict[str, Service],
    service_environments: dict[str, dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    web = load_in(service_environments["web"], monkeypatch, tmp_path)
    assert seconds(satchel["web"]["stop_grace_period"]) > web.graceful_timeout
    for name in WORKERS:
        worker = load_in(service_environments[name], monkeypatch, tmp_path)
        assert seconds(satchel[name]["stop_grace_period"]) > worker.worker_grace, name
