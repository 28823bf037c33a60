"""The settings object: every variable Satchel reads, validated the moment it is built."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from satchel.domain.accounts import SignupMode
from satchel.runtime.release import RELEASE_VARIABLE, git_release
from satchel.settings.sources import ENV_FILE, FileVariables
from satchel.settings.values import (
    BrokerUrl,
    ClamavUrl,
    DatabaseUrl,
    EmailUrl,
    HttpUrl,
    RedisUrl,
    StorageUrl,
    origin_of,
    trusted_proxies,
)


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
    forwarded_allow_ips: Annotated[str, AfterValidator(trusted_proxies)] = Field(
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
    migration_lock_timeout: float = Field(
        10,
        alias="SATCHEL_MIGRATION_LOCK_TIMEOUT",
        gt=0,
        le=3600,
        description="seconds the release step waits for a table another session holds before it gives up",
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
