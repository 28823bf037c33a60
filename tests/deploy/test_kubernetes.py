"""The Kubernetes manifests render, pass the API schemas, and describe a Satchel that can run.

A schema says whether each object is well-formed on its own. These tests check what it cannot: that the
objects agree with each other (selectors, names, ports), with the Procfile, and with Satchel's settings.
Everything is rendered offline once per module with the ``kubectl`` and ``kubernetes-validate`` of the dev
dependencies; no cluster is involved.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from satchel.settings import load_settings, setting_names

from support.procfile import procfile

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
PRODUCTION_CONFIG = Path("overlays/production/config")
TOOLS = Path(sys.executable).parent

# The oldest Kubernetes the manifests are written for (the preStop `sleep` action is on by default from
# 1.30, Job pod failure policies are stable from 1.31) and the newest the validator knows.
KUBERNETES_VERSIONS = ("1.31.0", "1.37.0")

KUSTOMIZATIONS = ("base", "base/release", "overlays/production", "overlays/production/release")

SECRETS_DIR = "/run/secrets/satchel"

Object = dict[str, Any]


def _tool(name: str) -> str:
    path = TOOLS / name
    if not path.is_file():
        pytest.fail(f"{name} is missing from {TOOLS}: install the dev dependencies (uv sync)")
    return str(path)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of deploy/kubernetes with the example secrets in place of the operator's git-ignored file."""
    copy = tmp_path_factory.mktemp("kubernetes") / "kubernetes"
    shutil.copytree(KUBERNETES, copy, ignore=shutil.ignore_patterns("secrets.env"))
    config = copy / PRODUCTION_CONFIG
    shutil.copyfile(config / "secrets.env.example", config / "secrets.env")
    return copy


@pytest.fixture(scope="module")
def rendered(tree: Path) -> dict[str, str]:
    """``kubectl kustomize`` output of each kustomization, by its path under deploy/kubernetes."""
    kubectl = _tool("kubectl")
    out = {}
    for name in KUSTOMIZATIONS:
        result = subprocess.run([kubectl, "kustomize", str(tree / name)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"kubectl kustomize {name} failed:\n{result.stderr}"
        out[name] = result.stdout
    return out


def _objects(text: str) -> list[Object]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="module")
def app(rendered: dict[str, str]) -> list[Object]:
    return _objects(rendered["overlays/production"])


@pytest.fixture(scope="module")
def release(rendered: dict[str, str]) -> list[Object]:
    return _objects(rendered["overlays/production/release"])


@pytest.fixture(scope="module")
def production(app: list[Object], release: list[Object]) -> list[Object]:
    """Everything production runs: the app and its release step, each shared object once."""
    seen: dict[tuple[str, str], Object] = {}
    for obj in [*release, *app]:
        seen.setdefault((obj["kind"], obj["metadata"]["name"]), obj)
    return list(seen.values())


def of_kind(objects: list[Object], kind: str) -> list[Object]:
    return [obj for obj in objects if obj["kind"] == kind]


def one(objects: list[Object], kind: str, name: str | None = None) -> Object:
    found = [obj for obj in of_kind(objects, kind) if name is None or obj["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_template(obj: Object) -> Object:
    spec = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
    template: Object = spec["template"]
    return template


def workloads(objects: list[Object]) -> list[Object]:
    return [obj for obj in objects if obj["kind"] in ("Deployment", "Job", "CronJob")]


def containers(obj: Object) -> list[Object]:
    spec = pod_template(obj)["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def config_data(objects: list[Object]) -> dict[str, str]:
    data: dict[str, str] = one(objects, "ConfigMap")["data"]
    return data


def secret_data(objects: list[Object]) -> dict[str, str]:
    secret = one(objects, "Secret")
    return {key: base64.b64decode(value).decode() for key, value in secret.get("data", {}).items()}


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


_UNITS = {"m": 0.001, "": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}


def quantity(value: str | int) -> float:
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value))
    assert match, f"not a Kubernetes quantity: {value!r}"
    return float(match[1]) * _UNITS[match[2]]


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_every_kustomization_renders_objects_the_api_schemas_accept_strictly(
    name: str, rendered: dict[str, str], tmp_path: Path
) -> None:
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(rendered[name])
    versions = [arg for version in KUBERNETES_VERSIONS for arg in ("-k", version)]
    result = subprocess.run(
        [_tool("kubernetes-validate"), "--strict", "--quiet", *versions, str(manifest)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{name}:\n{result.stdout}{result.stderr}"
    assert "ERROR" not in result.stdout
    assert _objects(rendered[name]), f"{name} rendered no objects"


def test_every_procfile_process_type_runs_its_procfile_command(production: list[Object]) -> None:
    for process, command in procfile().items():
        assert command[0] == "satchel", f"Procfile {process}: the image's entrypoint is satchel"
        if process == "release":
            workload = one(production, "Job")
        else:
            workload = one(production, "Deployment", process)
            assert pod_template(workload)["metadata"]["labels"]["app.kubernetes.io/component"] == process
        (container,) = containers(workload)
        assert container["args"] == command[1:], process
        assert "command" not in container, f"{process} must keep the image's entrypoint"
    assert {d["metadata"]["name"] for d in of_kind(production, "Deployment")} == set(procfile()) - {"release"}


def test_the_release_job_migrates_and_the_cronjob_purges_expired_shares(production: list[Object]) -> None:
    job = one(production, "Job")
    assert [c["args"] for c in containers(job)] == [["migrate"]]
    assert job["spec"]["backoffLimit"] >= 1
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    cron = one(production, "CronJob")
    assert [c["args"] for c in containers(cron)] == [["purge-expired"]]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    # The CronJob is the one sweeper: the workers' own sweep is off, so the two never compete.
    assert config_data(production)["SATCHEL_SWEEP_INTERVAL"] == "0"


def test_each_release_gets_a_migration_job_named_after_it_running_its_image(production: list[Object]) -> None:
    release_id = config_data(production)["RELEASE_ID"]
    assert re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,53}[a-z0-9])?", release_id), "a Job name needs a DNS label"
    assert one(production, "Job")["metadata"]["name"] == f"migrate-{release_id}"
    images = {c["image"] for w in workloads(production) for c in containers(w)}
    assert len(images) == 1, f"one image runs every process type, found {images}"
    assert images.pop().rpartition(":")[2] == release_id, "the image is tagged with the release id"


def test_the_release_step_and_the_app_share_one_configmap_and_secret(app: list[Object], release: list[Object]) -> None:
    for kind in ("ConfigMap", "Secret", "Namespace"):
        assert one(app, kind) == one(release, kind), kind
    assert not of_kind(app, "Job"), "the migration Job is applied on its own, before the app"
    assert {obj["kind"] for obj in release} == {"Namespace", "ConfigMap", "Secret", "Job"}


def test_web_is_live_on_healthz_ready_on_readyz_and_drains_before_sigterm(production: list[Object]) -> None:
    web = one(production, "Deployment", "web")
    (container,) = containers(web)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container[probe]["httpGet"]
        assert (get["path"], get["port"]) == (path, "http"), probe
    assert ports["http"] == int(config_data(production)["PORT"])
    assert container["lifecycle"]["preStop"]["sleep"]["seconds"] >= 3
    rollout = web["spec"]["strategy"]["rollingUpdate"]
    assert rollout["maxUnavailable"] == 0


def test_every_container_has_cpu_and_memory_requests_within_limits(production: list[Object]) -> None:
    for workload in workloads(production):
        for container in containers(workload):
            resources = container["resources"]
            for resource in ("cpu", "memory"):
                request = quantity(resources["requests"][resource])
                limit = quantity(resources["limits"][resource])
                assert 0 < request <= limit, f"{workload['metadata']['name']}: {resource}"


def test_every_pod_runs_as_the_image_user_without_privileges_or_cluster_credentials(
    production: list[Object],
) -> None:
    user = {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001}
    for workload in workloads(production):
        name = workload["metadata"]["name"]
        spec = pod_template(workload)["spec"]
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["enableServiceLinks"] is False, f"{name}: service links would add SATCHEL_* variables"
        pod_context = spec["securityContext"]
        assert pod_context | user == pod_context, name
        assert pod_context["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in containers(workload):
            context = container["securityContext"]
            assert context | user == context, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
    namespace = one(production, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    namespaced = [obj for obj in production if obj["kind"] != "Namespace"]
    assert {obj["metadata"]["namespace"] for obj in namespaced} == {namespace["metadata"]["name"]}


def test_every_container_has_a_read_only_root_and_a_writable_tmp(production: list[Object]) -> None:
    for workload in workloads(production):
        spec = pod_template(workload)["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        for container in containers(workload):
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            (tmp,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert not tmp.get("readOnly", False)
            assert "emptyDir" in volumes[tmp["name"]], f"{workload['metadata']['name']}: /tmp is an emptyDir"


def test_grace_periods_outlast_the_shutdown_timeouts_and_the_prestop_pause(production: list[Object]) -> None:
    config = config_data(production)
    for deployment in of_kind(production, "Deployment"):
        name = deployment["metadata"]["name"]
        timeout = float(config["GRACEFUL_TIMEOUT"] if name == "web" else config["WORKER_GRACE"])
        spec = pod_template(deployment)["spec"]
        (container,) = containers(deployment)
        pause = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        assert spec["terminationGracePeriodSeconds"] > timeout + pause, name


def test_secrets_reach_containers_only_as_files_named_by_file_settings(production: list[Object]) -> None:
    config = config_data(production)
    secret = one(production, "Secret")
    keys = set(secret_data(production))
    assert keys, "the Secret has keys"
    # Every key is read through its *_FILE setting, and every *_FILE setting names a key of the Secret.
    files = {name.removesuffix("_FILE"): path for name, path in config.items() if name.endswith("_FILE")}
    assert set(files) == keys
    assert all(path == f"{SECRETS_DIR}/{key}" for key, path in files.items())
    for workload in workloads(production):
        spec = pod_template(workload)["spec"]
        (volume,) = [v for v in spec["volumes"] if "secret" in v]
        assert volume["secret"]["secretName"] == secret["metadata"]["name"]
        assert volume["secret"]["defaultMode"] & 0o007 == 0, "secret files are not world-readable"
        for container in containers(workload):
            mounts = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
            assert [(m["mountPath"], m.get("readOnly")) for m in mounts] == [(SECRETS_DIR, True)]
            assert not any("valueFrom" in e for e in container.get("env", [])), "no secret as an env value"
            for source in container["envFrom"]:
                assert source == {"configMapRef": {"name": one(production, "ConfigMap")["metadata"]["name"]}}


def test_every_environment_variable_is_a_satchel_setting(production: list[Object]) -> None:
    known = setting_names()
    names = set(config_data(production))
    for workload in workloads(production):
        for container in containers(workload):
            names |= {e["name"] for e in container.get("env", [])}
    unknown = names - known
    assert not unknown, f"not Satchel settings: {sorted(unknown)}"


def test_the_configmap_and_secret_are_a_valid_satchel_configuration(
    production: list[Object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for key, value in secret_data(production).items():
        (secrets / key).write_text(value)
    for name, value in config_data(production).items():
        monkeypatch.setenv(name, value.replace(SECRETS_DIR, str(secrets)))

    settings = load_settings()

    config = config_data(production)
    assert settings.release_id == config["RELEASE_ID"]
    assert settings.secret_key.get_secret_value() == secret_data(production)["SECRET_KEY"]
    assert settings.storage_url.startswith("s3://")
    assert settings.log_format == "json"
    for deployment in of_kind(production, "Deployment"):
        (container,) = containers(deployment)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == settings.metrics_port, deployment["metadata"]["name"]


def test_the_autoscaler_scales_the_web_deployment_on_cpu(production: list[Object]) -> None:
    hpa = one(production, "HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
    web = one(production, "Deployment", target["name"])
    assert web["metadata"]["name"] == "web"
    assert "replicas" not in web["spec"], "the autoscaler owns the web's replica count"
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    (container,) = containers(web)
    assert "cpu" in container["resources"]["requests"], "utilization is measured against the request"


def test_each_deployment_has_a_disruption_budget_selecting_its_pods(production: list[Object]) -> None:
    budgets = of_kind(production, "PodDisruptionBudget")
    for deployment in of_kind(production, "Deployment"):
        labels = pod_template(deployment)["metadata"]["labels"]
        assert selects(deployment["spec"]["selector"]["matchLabels"], labels)
        covering = [b for b in budgets if selects(b["spec"]["selector"]["matchLabels"], labels)]
        assert len(covering) == 1, deployment["metadata"]["name"]
    for budget in budgets:
        matched = [
            d
            for d in of_kind(production, "Deployment")
            if selects(budget["spec"]["selector"]["matchLabels"], pod_template(d)["metadata"]["labels"])
        ]
        assert len(matched) == 1, f"PodDisruptionBudget {budget['metadata']['name']} selects {len(matched)}"


def test_the_service_selects_the_web_pods_and_the_ingress_routes_to_it_over_tls(production: list[Object]) -> None:
    service = one(production, "Service")
    selected = [
        d["metadata"]["name"]
        for d in workloads(production)
        if selects(service["spec"]["selector"], pod_template(d)["metadata"]["labels"])
    ]
    assert selected == ["web"]
    (web,) = containers(one(production, "Deployment", "web"))
    container_ports = {p["name"] for p in web["ports"]}
    service_ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert service_ports["http"]["port"] == 80
    assert {p["targetPort"] for p in service_ports.values()} <= container_ports
    assert "metrics" in service_ports

    ingress = one(production, "Ingress")
    host = urlsplit(config_data(production)["SATCHEL_PUBLIC_URL"]).hostname
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == host, "share links carry the host the Ingress answers"
    for path in rule["http"]["paths"]:
        backend = path["backend"]["service"]
        assert backend == {"name": service["metadata"]["name"], "port": {"name": "http"}}
    assert any(host in tls["hosts"] and tls["secretName"] for tls in ingress["spec"]["tls"])
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "0"


def test_the_base_alone_declares_secret_keys_without_values(rendered: dict[str, str]) -> None:
    for name in ("base", "base/release"):
        objects = _objects(rendered[name])
        data = secret_data(objects)
        assert data and set(data.values()) == {""}, name


def test_the_committed_example_secrets_are_fake_and_the_real_ones_are_git_ignored() -> None:
    config = KUBERNETES / PRODUCTION_CONFIG
    for line in (config / "secrets.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            assert "FAKE" in line.partition("=")[2], line
    ignored = subprocess.run(
        ["git", "check-ignore", "--quiet", "--no-index", str(config / "secrets.env")], cwd=ROOT, timeout=30
    )
    assert ignored.returncode == 0, "secrets.env must be git-ignored"
