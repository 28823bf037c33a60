"""Satchel's configuration: the only package that reads the environment (``runtime.release`` reads
``RELEASE_ID`` alone, with the same fallback, for what must answer without a valid configuration).

Platform-standard variables keep their usual names (``PORT``, ``DATABASE_URL``,
``AWS_*``); Satchel's own knobs are prefixed ``SATCHEL_``. Everything is
validated when the object is built, so a bad deploy fails at start with one
line per problem instead of at the first request.

``model`` is the settings object, every variable with its meaning; ``values`` what a URL or a list of proxies
must look like; ``sources`` the ``NAME_FILE`` variables; ``loading`` builds the object, turning what is wrong
into one line per problem, and lists the effective configuration for ``satchel config``.
"""

from __future__ import annotations

from satchel.settings.loading import (
    RETIRED,
    SECRET_NAMES,
    ConfigEntry,
    ConfigError,
    describe,
    get_settings,
    load_settings,
    setting_names,
)
from satchel.settings.model import Settings
from satchel.settings.sources import ENV_FILE, process_environment
from satchel.settings.values import origin_of, redact_url

__all__ = [
    "ENV_FILE",
    "RETIRED",
    "SECRET_NAMES",
    "ConfigEntry",
    "ConfigError",
    "Settings",
    "describe",
    "get_settings",
    "load_settings",
    "origin_of",
    "process_environment",
    "redact_url",
    "setting_names",
]
