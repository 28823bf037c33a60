"""Satchel's configuration: the only module that reads the environment (``runtime.release`` reads
``RELEASE_ID`` alone, with the same fallback, for what must answer without a valid configuration).

Platform-standard variables keep their usual names (``PORT``, ``DATABASE_URL``,
``AWS_*``); Satchel's own knobs are prefixed ``SATCHEL_``. Everything is
validated when the object is built, so a bad deploy fails at start with one
line per problem instead of at the first request.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from satchel.domain.accounts import SignupMode
from satchel.runtime.release import RELEASE_VARIABLE, git_release

ENV_FILE = ".env"


# Schemes that name a server: without a host there is nothing to connect to. PostgreSQL may
# use a local socket instead (``postgresql:///db?host=/run/postgresql``), Redis a ``unix://`` path.
_NEEDS_HOST = frozenset({"redis", "rediss", "amqp", "amqps", "smtp", "smtps", "tcp", "http", "https"})


def _port_problem(netloc: str) -> str | None:
    """What is wrong with the URL's port, if anything; the port is shown only when it is a number."""
    host_port = netloc.rpartition("@")[2]  # never look at the credentials
    port = host_port.rpartition("]")[2].partition(":")[2]  # after an [IPv6] host's bracket, if any
    if not port:
        return None
    if not (port.isascii() and port.isdigit()):
        return "expected a port from 1 to 65535, found a port that is not a number"
    if not 1 <= int(port) <= 65535:
        return f"expected a port from 1 to 65535, found {int(port)}"
    return None


def _url_problem(value: str, schemes: tuple[str, ...]) -> str | None:
    """Why a backing-service URL cannot work, checked before any connection is tried."""
    try:
        parts = urlsplit(value)
    except ValueError:  # an unbalanced [ of an IPv6 host
        return "expected a URL, found one that cannot be parsed"
    if parts.scheme not in schemes:
        supported = " or ".join(f"{s}://" for s in schemes)
        found = f"{parts.scheme}://" if parts.scheme else "no scheme"
        return f"expected a URL starting {supported}, found {found}"
    if parts.scheme == "s3" and not parts.netloc:
        return "expected a bucket (s3://bucket or s3://bucket/prefix), found none"
    if parts.scheme in ("file", "unix") and not (parts.netloc + parts.path).strip("/"):
        return f"expected a path ({parts.scheme}:///absolute/path), found none"
    if parts.scheme in _NEEDS_HOST and not parts.hostname:
        return f"expected a host ({parts.scheme}://host:port), found none"
    return _port_problem(parts.netloc)


def _url_check(schemes: tuple[str, ...]) -> AfterValidator:
    """A validator that accepts a URL only when Satchel could connect with it: scheme, host, port, bucket, path."""

    def check(value: str) -> str:
        if problem := _url_problem(value, schemes):
            raise ValueError(problem)
        return value

    return AfterValidator(check)


DatabaseUrl = Annotated[str, _url_check(("postgresql", "postgres", "postgresql+psycopg"))]
RedisUrl = Annotated[str, _url_check(("redis", "rediss", "unix"))]
BrokerUrl = Annotated[str, _url_check(("redis", "rediss", "amqp", "amqps"))]
StorageUrl = Annotated[str, _url_check(("file", "s3", "memory"))]
EmailUrl = Annotated[str, _url_check(("smtp", "smtps", "console"))]
ClamavUrl = Annotated[str, _url_check(("tcp",))]
HttpUrl = Annotated[str, _url_check(("http", "https"))]


def _trusted_proxies(value: str) -> str:
    """``*`` or IP addresses and networks, comma-separated; empty trusts no proxy at all."""
    for item in (part.strip() for part in value.split(",")):
        if not item or item == "*":
            continue
        try:
            ipaddress.ip_network(item)  # strict: 10.0.0.1/8 is a typo for 10.0.0.0/8
        except ValueError:
            raise ValueError(
                f"expected IP addresses or networks (10.0.0.5, 10.0.0.0/8) or *, comma-separated, found {item!r}"
            ) from None
    return value


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


class Settings(BaseSettings):
    """Every setting Satchel reads, with its environment variable as alias."""

    model_config = SettingsConfigDict(
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        frozen=True,
    )

    # Processes (factor VII, IX)
    port: int = Field(8000, alias="PORT", ge=1, le=65535, description="HTTP port the web process binds")
    web_concurrency: int = Field(2, alias="WEB_CONCURRENCY", ge=1, le=64, description="web worker processes")
    graceful_timeout: int = Field(
        25, alias="GRACEFUL_TIMEOUT", gt=0, le=3600, description="seconds in-flight requests get after SIGTERM"
    )
    worker_concurrency: int = Field(
        2, alias="SATCHEL_WORKER_CONCURRENCY", ge=1, le=64, description="job processes per worker"
    )
    worker_grace: float = Field(
        60, alias="WORKER_GRACE", gt=0, le=3600, description="seconds running jobs get after SIGTERM"
    )
    broker_visibility_timeout: int = Field(
        3600, alias="SATCHEL_BROKER_VISIBILITY_TIMEOUT", ge=1, description="Redis broker: redelivery after (s)"
    )
    job_republish_after: int = Field(
        300, alias="SATCHEL_JOB_REPUBLISH_AFTER", ge=1, description="publish again a job not started after (s)"
    )
    job_recovery_interval: float = Field(
        10, alias="SATCHEL_JOB_RECOVERY_INTERVAL", gt=0, description="how often relays look for dead workers' jobs"
    )
    sweep_interval: int = Field(
        300, alias="SATCHEL_SWEEP_INTERVAL", ge=0, description="seconds between expiry sweeps; 0 = never"
    )
    forwarded_allow_ips: Annotated[str, AfterValidator(_trusted_proxies)] = Field(
        "", alias="FORWARDED_ALLOW_IPS", description="proxies trusted to set X-Forwarded-*: IPs, comma-separated, or *"
    )
    max_header_bytes: int = Field(
        64 * 1024, alias="SATCHEL_MAX_HEADER_BYTES", ge=4096, le=1024**2, description="request head above this: 431"
    )
    body_timeout: float = Field(
        60, alias="SATCHEL_BODY_TIMEOUT", gt=0, le=3600, description="seconds a request body may stall before it is cut"
    )

    # Backing services (factor IV): each one is a URL, nothing else
    database_url: DatabaseUrl = Field(alias="DATABASE_URL", description="PostgreSQL")
    redis_url: RedisUrl = Field(alias="REDIS_URL", description="sessions, rate limits, job markers")
    broker_url: BrokerUrl | None = Field(None, alias="BROKER_URL", description="job broker; defaults to REDIS_URL")
    redis_tls_verify: bool = Field(
        True,
        alias="SATCHEL_REDIS_TLS_VERIFY",
        description="check a rediss:// server's certificate (REDIS_URL and BROKER_URL); false only for self-signed",
    )
    storage_url: StorageUrl = Field(alias="STORAGE_URL", description="where file bytes live")
    email_url: EmailUrl = Field("console://", alias="EMAIL_URL", description="outgoing mail")
    clamav_url: ClamavUrl | None = Field(None, alias="CLAMAV_URL", description="virus scanner; unset = no scanning")
    database_timeout: float = Field(
        5, alias="SATCHEL_DATABASE_TIMEOUT", gt=0, le=300, description="seconds one database call may take"
    )
    redis_timeout: float = Field(
        2, alias="SATCHEL_REDIS_TIMEOUT", gt=0, le=60, description="seconds one Redis call may take"
    )
    storage_timeout: float = Field(
        30, alias="SATCHEL_STORAGE_TIMEOUT", gt=0, le=600, description="seconds one storage call (not a transfer) takes"
    )

    # Object storage details for s3:// (the standard AWS variable names)
    aws_access_key_id: str | None = Field(None, alias="AWS_ACCESS_KEY_ID")
    aws_secret_access_key: SecretStr | None = Field(None, alias="AWS_SECRET_ACCESS_KEY")
    aws_session_token: SecretStr | None = Field(None, alias="AWS_SESSION_TOKEN")
    aws_region: str = Field("us-east-1", alias="AWS_DEFAULT_REGION")
    aws_endpoint_url: HttpUrl | None = Field(None, alias="AWS_ENDPOINT_URL", description="S3-compatible endpoint")

    # Identity and secrets (factor V)
    secret_key: SecretStr = Field(
        alias="SECRET_KEY",
        min_length=32,
        description="signs the CSRF tokens of visitors without a session; same on every process",
    )
    release_id: str = Field(
        default_factory=git_release, alias=RELEASE_VARIABLE, min_length=1, max_length=64, description="release running"
    )

    instance: str | None = Field(
        None,
        alias="SATCHEL_INSTANCE",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="a name for this host, sent as the Satchel-Instance response header; unset = no header",
    )

    # Sign-in through an OpenID Connect provider (factor IV: a backing service chosen by URL): all three, or none
    oidc_issuer: HttpUrl | None = Field(
        None,
        alias="OIDC_ISSUER",
        description="the identity provider's issuer URL (its /.well-known/openid-configuration is read from there); "
        "unset = no provider sign-in; needs OIDC_CLIENT_ID and OIDC_CLIENT_SECRET",
    )
    oidc_client_id: str | None = Field(
        None, alias="OIDC_CLIENT_ID", min_length=1, max_length=255, description="Satchel's client id at the provider"
    )
    oidc_client_secret: SecretStr | None = Field(
        None, alias="OIDC_CLIENT_SECRET", min_length=1, description="Satchel's client secret at the provider"
    )
    oidc_provider_name: str = Field(
        "your identity provider",
        alias="OIDC_PROVIDER_NAME",
        min_length=1,
        max_length=40,
        description='the provider as the sign-in button names it: "Sign in with …"',
    )
    oidc_timeout: float = Field(
        10, alias="OIDC_TIMEOUT", gt=0, le=60, description="seconds one call to the identity provider may take"
    )

    # Metrics: Prometheus text, never on the public port without a token
    metrics_port: int | None = Field(
        None, alias="SATCHEL_METRICS_PORT", ge=1, le=65535, description="port serving /metrics apart from $PORT"
    )
    metrics_token: SecretStr | None = Field(
        None, alias="SATCHEL_METRICS_TOKEN", min_length=16, description="bearer token for /metrics on $PORT"
    )

    # Logs (factor XI)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", alias="LOG_LEVEL")
    log_format: Literal["json", "console"] = Field("json", alias="LOG_FORMAT")

    # Product knobs
    public_url: HttpUrl | None = Field(None, alias="SATCHEL_PUBLIC_URL", description="URL users reach Satchel at")
    max_upload_bytes: int = Field(10 * 1024**3, alias="SATCHEL_MAX_UPLOAD_BYTES", gt=0)
    upload_chunk_bytes: int = Field(
        50 * 1024**2,
        alias="SATCHEL_UPLOAD_CHUNK_BYTES",
        ge=64 * 1024,
        description="browser PATCH size (under proxy caps)",
    )
    upload_expiry_hours: int = Field(
        24, alias="SATCHEL_UPLOAD_EXPIRY_HOURS", ge=1, le=720, description="idle hours before an unfinished upload goes"
    )
    default_quota_bytes: int = Field(
        50 * 1024**3, alias="SATCHEL_DEFAULT_QUOTA_BYTES", gt=0, description="a new account's quota (50 GiB)"
    )
    signup: SignupMode = Field(
        "invite",
        alias="SATCHEL_SIGNUP",
        description="who opens accounts: open (anyone signs up), invite (only an invitation link opens one) or "
        "closed (administrators create them); satchel dev runs open",
    )
    invitation_days: int = Field(
        7, alias="SATCHEL_INVITATION_DAYS", ge=1, le=365, description="days an invitation link works, once"
    )
    password_reset_minutes: int = Field(
        60,
        alias="SATCHEL_PASSWORD_RESET_MINUTES",
        ge=5,
        le=1440,
        description="minutes a password reset link works, once",
    )
    share_max_days: int = Field(30, alias="SATCHEL_SHARE_MAX_DAYS", ge=1, le=3650)
    share_default_days: int = Field(
        7, alias="SATCHEL_SHARE_DEFAULT_DAYS", ge=1, le=3650, description="expiry of a link when none is asked"
    )
    share_history_days: int = Field(
        30,
        alias="SATCHEL_SHARE_HISTORY_DAYS",
        ge=0,
        le=3650,
        description="days an ended link's record is kept after the sweep (its page says why it ended, its owner "
        "still sees it); then it goes and the link is unknown; 0 = at once",
    )
    preview_origin: HttpUrl | None = Field(
        None,
        alias="SATCHEL_PREVIEW_ORIGIN",
        description="origin (scheme://host[:port]) that serves previews apart from the app; unset = the app's own, "
        "sandboxed; needs SATCHEL_PUBLIC_URL on another origin",
    )
    storage_presign: bool = Field(False, alias="SATCHEL_STORAGE_PRESIGN")
    scan_required: bool = Field(False, alias="SATCHEL_SCAN_REQUIRED")
    ready_timeout: float = Field(
        2.0, alias="SATCHEL_READY_TIMEOUT", gt=0, le=30, description="seconds each /readyz check may take"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, FileVariables(settings_cls), env_settings, dotenv_settings

    @field_validator("metrics_port")
    @classmethod
    def _metrics_apart_from_http(cls, port: int | None, info: ValidationInfo) -> int | None:
        if port is not None and port == info.data.get("port"):
            raise ValueError(f"expected a port other than PORT ({port}): metrics are not served on the public port")
        return port

    @field_validator("share_default_days")
    @classmethod
    def _default_within_max(cls, days: int, info: ValidationInfo) -> int:
        maximum = info.data.get("share_max_days")
        if maximum is not None and days > maximum:
            raise ValueError(f"expected at most SATCHEL_SHARE_MAX_DAYS ({maximum}), found {days}")
        return days

    @field_validator("preview_origin")
    @classmethod
    def _preview_origin_apart(cls, origin: str | None, info: ValidationInfo) -> str | None:
        if origin is None:
            return None
        parts = urlsplit(origin)
        if parts.path.strip("/") or parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(f"expected an origin alone (scheme://host[:port]), found {origin!r}")
        public = info.data.get("public_url")
        if public is None:
            if "public_url" in info.data:  # unset, rather than invalid: then its own error says enough
                raise ValueError("expected SATCHEL_PUBLIC_URL to be set too: previews are framed by the app's origin")
            return origin
        if origin_of(public) == origin_of(origin):
            raise ValueError("expected an origin other than SATCHEL_PUBLIC_URL's: that is the point of it")
        return origin_of(origin)

    @field_validator("scan_required")
    @classmethod
    def _scan_needs_scanner(cls, required: bool, info: ValidationInfo) -> bool:
        # A field validator, not a model one: it runs even when other values are bad.
        if required and info.data.get("clamav_url") is None and "clamav_url" in info.data:
            raise ValueError("expected CLAMAV_URL to be set when scanning is required, found it unset")
        return required

    @field_validator("oidc_client_secret")
    @classmethod
    def _oidc_all_or_none(cls, secret: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # A field validator, not a model one: it runs even when other values are bad. Fields that failed are
        # missing from info.data, and their own line says enough.
        names = {"oidc_issuer": "OIDC_ISSUER", "oidc_client_id": "OIDC_CLIENT_ID"}
        if any(field not in info.data for field in names):
            return secret
        given = {name: info.data[field] is not None for field, name in names.items()} | {
            "OIDC_CLIENT_SECRET": secret is not None
        }
        if any(given.values()) and not all(given.values()):
            missing = ", ".join(name for name, is_set in given.items() if not is_set)
            raise ValueError(
                f"expected OIDC_ISSUER, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET all set or none, found {missing} unset"
            )
        return secret

    @property
    def oidc_configured(self) -> bool:
        return self.oidc_issuer is not None

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def links_base(self) -> str:
        """Where links made outside a request (mails, admin commands) point: SATCHEL_PUBLIC_URL, else this host."""
        return str(self.public_url or f"http://localhost:{self.port}").rstrip("/")


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased, without a default port."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    host = f"[{host}]" if ":" in host else host
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = "" if parts.port in (None, default) else f":{parts.port}"
    return f"{parts.scheme}://{host}{port}"


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
    "SECRET_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "SATCHEL_METRICS_TOKEN", "OIDC_CLIENT_SECRET",
}  # fmt: skip


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


def redact_url(url: str) -> str:
    """The URL with any password replaced, safe to print or log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]  # keeps [IPv6] brackets and the port as written
    netloc = f"{parts.username}:***@{host}" if parts.username else f"***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


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
