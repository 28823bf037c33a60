"""The Procfile's process formation, which every deploy artifact must run unchanged."""

from __future__ import annotations

import shlex
from pathlib import Path

PROCFILE = Path(__file__).resolve().parents[2] / "Procfile"


def procfile() -> dict[str, list[str]]:
    """Each process type and its command, split as a shell would."""
    entries = {}
    for line in PROCFILE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = shlex.split(command)
    return entries
