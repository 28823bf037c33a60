"""Loading the settings: one line per problem when the environment does not describe a runnable Satchel, and
the effective configuration, secrets hidden, as ``satchel config`` shows it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr, ValidationError
from pydantic_settings import DotEnvSettingsSource, EnvSettingsSource

from satchel.settings.model import Settings
from satchel.settings.sources import ENV_FILE, FileVariableError, FileVariables
from satchel.settings.values import redact_url


class ConfigError(Exception):
    """The environment does not describe a runnable Satchel; ``lines`` says why."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def _alias(field_name: str) -> str:
    alias = Settings.model_fields[field_name].alias
    return alias or field_name.upper()


def setting_names() -> set[str]:
    """Every variable Satchel reads, each also in its ``NAME_FILE`` form."""
    names = {_alias(field_name) for field_name in Settings.model_fields}
    return names | {f"{name}_FILE" for name in names}


def _describe(error: Any) -> str:
    """One line naming the variable, what was expected and what was found."""
    loc = error["loc"]
    if not loc:  # a rule across fields
        return str(error["msg"]).removeprefix("Value error, ")
    name = str(loc[0])
    if name in Settings.model_fields:
        name = _alias(name)
    if error["type"] == "missing":
        return f"{name}: required, but not set"
    message = str(error["msg"]).removeprefix("Value error, ")
    if message.startswith("expected"):  # our own validators already say it all
        return f"{name}: {message}"
    value = error.get("input")
    found = f"{len(str(value))} characters (hidden)" if name in SECRET_NAMES else repr(redact_url(str(value)))
    expected = _EXPECTED.get(error["type"], _lower(message)).format(**error.get("ctx", {}))
    return f"{name}: expected {expected}, found {found}"


def _lower(message: str) -> str:
    message = message.removeprefix("Input should be ")
    return (message[0].lower() + message[1:]).replace("{", "{{").replace("}", "}}")


_EXPECTED = {
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "bool_parsing": "true or false",
    "greater_than": "a number above {gt}",
    "greater_than_equal": "a number of at least {ge}",
    "less_than": "a number below {lt}",
    "less_than_equal": "a number of at most {le}",
    "string_too_short": "at least {min_length} characters",
    "too_short": "at least {min_length} characters",
    "string_too_long": "at most {max_length} characters",
}


SECRET_NAMES = {
    "SECRET_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "SATCHEL_METRICS_TOKEN",
    "OIDC_CLIENT_SECRET",
}


# Variables Satchel read once and no longer does, with what replaced each: one still set is a configuration
# error, never silently ignored (an operator who closed sign-up with it must not find it open).
RETIRED = {"SATCHEL_SIGNUP_ENABLED": "SATCHEL_SIGNUP=open, invite or closed (true was open, false is closed)"}


def _retired(overrides: dict[str, Any]) -> list[str]:
    dotenv = DotEnvSettingsSource(Settings, env_file=ENV_FILE).env_vars if Path(ENV_FILE).exists() else {}
    given = {name.upper() for name in (*os.environ, *overrides, *dotenv)}
    return [
        f"{name}: no longer read; set {instead} instead"
        for name, instead in RETIRED.items()
        if name in given or f"{name}_FILE" in given
    ]


def load_settings(**overrides: Any) -> Settings:
    """Build and validate the settings, raising ConfigError listing every problem."""
    retired = _retired(overrides)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError([*retired, *(_describe(e) for e in exc.errors())]) from None
    except FileVariableError as exc:
        raise ConfigError([*retired, *exc.lines]) from None
    if retired:
        raise ConfigError(retired)
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


@dataclass(frozen=True)
class ConfigEntry:
    """One setting as ``satchel config`` shows it."""

    name: str
    value: str
    source: Literal["environment", "file", ".env", "default"]


def describe(settings: Settings) -> Iterator[ConfigEntry]:
    """The effective configuration, secrets redacted, with where each value came from."""
    from_env = EnvSettingsSource(Settings)()
    from_files = FileVariables(Settings)()
    from_dotenv = DotEnvSettingsSource(Settings, env_file=ENV_FILE)() if Path(ENV_FILE).exists() else {}
    for field_name in Settings.model_fields:
        name = _alias(field_name)
        value = getattr(settings, field_name)
        if isinstance(value, SecretStr):
            shown = "********"
        elif isinstance(value, str):
            shown = redact_url(value)
        else:
            shown = "" if value is None else str(value)
        source: Literal["environment", "file", ".env", "default"] = "default"
        if name in from_files:
            source = "file"
        elif field_name in from_env or name in from_env:
            source = "environment"
        elif field_name in from_dotenv or name in from_dotenv:
            source = ".env"
        yield ConfigEntry(name, shown, source)
