"""Which release this process runs (factor V): ``RELEASE_ID``, else the git commit, else ``dev``.

Kept apart from ``settings`` so that ``satchel --version`` answers without building (and validating) the
whole configuration, and without importing what that takes. The settings use the same fallback.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

RELEASE_VARIABLE = "RELEASE_ID"


def git_release() -> str:
    """The commit this code was checked out at, or ``dev`` outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=2,
            cwd=Path(__file__).parent,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "dev"
    return out.stdout.strip() or "dev"


def current_release() -> str:
    """The release id from the environment, or the fallback the settings use when it is unset."""
    return os.environ.get(RELEASE_VARIABLE) or git_release()
