"""The import contracts in pyproject.toml say what they claim: every module of the package is in a layer,
and the core is forbidden every package the lock can install (``lint-imports`` then checks the code keeps them).
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "satchel"


def _contracts() -> list[dict[str, Any]]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts: list[dict[str, Any]] = pyproject["tool"]["importlinter"]["contracts"]
    return contracts


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _top_level_names(dist: metadata.Distribution) -> set[str]:
    """The names ``import`` finds a distribution's code under, from its list of installed files."""
    names = set()
    for file in dist.files or []:
        first = file.parts[0]
        if first.endswith((".dist-info", ".egg-info", ".data")) or first in ("..", "__pycache__", "bin"):
            continue
        if len(file.parts) > 1:
            names.add(first)
        elif first.endswith((".py", ".so", ".pyd")):
            names.add(first.split(".")[0])
    return {name for name in names if name.isidentifier() and not name.startswith("_")}


def test_every_module_of_the_package_is_in_a_layer() -> None:
    layers = next(c for c in _contracts() if c["type"] == "layers")["layers"]
    layered = {module.strip() for layer in layers for module in layer.split("|")}
    modules = {f"satchel.{path.stem}" for path in PACKAGE.iterdir() if path.is_dir() or path.suffix == ".py"}
    modules -= {"satchel.__init__", "satchel.__pycache__"}
    assert modules - layered == set()


def test_the_core_is_forbidden_every_package_the_lock_installs() -> None:
    contract = next(c for c in _contracts() if c["type"] == "forbidden")
    assert {"satchel.domain", "satchel.services", "satchel.ports"} <= set(contract["source_modules"])
    forbidden = set(contract["forbidden_modules"])
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    installed = {_normalized(dist.metadata["Name"]): dist for dist in metadata.distributions()}
    uncovered = {}
    for package in lock["package"]:
        dist = installed.get(_normalized(package["name"]))
        if package["name"] != "satchel" and dist is not None and (names := _top_level_names(dist) - forbidden):
            uncovered[package["name"]] = sorted(names)
    assert uncovered == {}
    assert {"fastapi", "sqlalchemy", "PIL", "argon2", "jinja2", "rich", "httpx", "billiard", "aiosmtpd"} <= forbidden
