"""The Uvicorn worker every Python baseline runs on: Satchel's worker settings, none of Satchel's code.

``BENCH_UVICORN_CONFIG`` (JSON, set by ``servers.baseline_env``) carries the ``CONFIG_KWARGS`` of
``satchel.web.server.SatchelWorker``, so a baseline and Satchel differ in the application alone, and stay
so when Satchel's settings change; importing Satchel here instead would slow the baselines' start.
"""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar

from uvicorn_worker import UvicornWorker


class BaselineWorker(UvicornWorker):  # type: ignore[misc]
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = json.loads(
        os.environ.get("BENCH_UVICORN_CONFIG") or '{"loop": "auto", "http": "auto"}'
    )
