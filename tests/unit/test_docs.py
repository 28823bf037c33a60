"""The documents that point into the code point at things that exist.

docs/twelve-factors.md says, for each factor, which files do it and which tests prove it: a claim citing a
test that was renamed or removed proves nothing, so a stale citation fails here, in the commit that made it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# `tests/x.py`, `tests/x.py::test_a`, a later `::test_b` of the same file, `src/satchel/…`, `docs/…`, root files
PATH = r"(?:tests|src|docs|deploy|bench)/[^`:\s]+|Dockerfile|Procfile|compose\.yaml|app\.json"
CITATION = re.compile(rf"`({PATH})(?:::(\w+)[^`]*)?`|`::(\w+)[^`]*`")


def citations(document: str) -> list[tuple[str, str | None]]:
    """Each cited path, and the test named with it (a ``::name`` alone belongs to the path cited before it)."""
    found: list[tuple[str, str | None]] = []
    path = ""
    for match in CITATION.finditer((ROOT / document).read_text()):
        if match.group(1):
            path = match.group(1).rstrip("/")
            found.append((path, match.group(2)))
        elif path:
            found.append((path, match.group(3)))
    return found


@pytest.mark.parametrize("document", ["docs/twelve-factors.md", "docs/architecture.md"])
def test_every_file_and_test_a_document_cites_exists(document: str) -> None:
    cited = citations(document)
    assert len(cited) > 10, "the pattern still finds the citations"
    missing = []
    for path, test in cited:
        target = ROOT / path
        if not (target.exists() or any(ROOT.glob(path))):  # a pattern (test_browser*.py) must match something
            missing.append(path)
        elif test and not re.search(rf"^(async )?def {test}\(", target.read_text(), re.MULTILINE):
            missing.append(f"{path}::{test}")
    assert missing == []
