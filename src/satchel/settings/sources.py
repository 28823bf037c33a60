"""Where settings come from besides the environment itself: ``NAME_FILE`` variables (secrets as files)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import PydanticBaseSettingsSource

ENV_FILE = ".env"


class FileVariableError(Exception):
    """A ``*_FILE`` variable that cannot be used; ``lines`` says which and why."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


MAX_FILE_VARIABLE_BYTES = 64 * 1024  # a secret or a URL; never a whole disk (/dev/zero named by mistake)


class FileVariables(PydanticBaseSettingsSource):
    """``NAME_FILE=/run/secrets/name`` sets ``NAME`` to that file's content, for any setting.

    The way container platforms hand over secrets (Compose and Swarm secrets, Kubernetes secret
    volumes) without putting them in the environment, where ``ps e`` and crash dumps show them.
    One trailing newline is dropped, as editors add it; setting both ``NAME`` and ``NAME_FILE`` is
    an error rather than a silent choice. Only the process environment names such files, not ``.env``.
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every variable at once

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        problems: list[str] = []
        for field_name, field in self.settings_cls.model_fields.items():
            name = field.alias or field_name.upper()
            path = os.environ.get(f"{name}_FILE")
            if not path:
                continue
            if os.environ.get(name):
                problems.append(f"{name}_FILE: expected either {name} or {name}_FILE, found both set")
                continue
            try:
                with Path(path).open("rb") as file:
                    content = file.read(MAX_FILE_VARIABLE_BYTES + 1)
                if len(content) > MAX_FILE_VARIABLE_BYTES:
                    problems.append(f"{name}_FILE: expected at most 64 KiB, found {path!r} larger")
                    continue
                found[name] = content.decode("utf-8").removesuffix("\n").removesuffix("\r")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
                problems.append(f"{name}_FILE: expected a readable UTF-8 file, found {path!r} ({reason.lower()})")
        if problems:
            raise FileVariableError(problems)
        return found


def process_environment() -> dict[str, str]:
    """A copy of this process's environment, for the children ``satchel dev`` starts."""
    return dict(os.environ)
