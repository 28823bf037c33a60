"""The configuration is validated at start, and says what is wrong without leaking secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from satchel.settings import RETIRED, ConfigError, Settings, describe, load_settings, redact_url

SECRET = "s3cr3t-" + "x" * 40
VALID = {
    "DATABASE_URL": "postgresql://satchel:dbpass@db.internal:5432/satchel",
    "REDIS_URL": "redis://:redispass@cache.internal:6379/0",
    "STORAGE_URL": "memory://",
    "SECRET_KEY": SECRET,
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No variable from the test process, and no .env file, reaches the settings."""
    for field in Settings.model_fields.values():
        if field.alias:
            monkeypatch.delenv(field.alias, raising=False)
    for name in RETIRED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def config_errors(**values: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(**values)
    return caught.value.lines


def line_for(lines: list[str], name: str) -> str:
    matching = [line for line in lines if line.startswith(f"{name}:")]
    assert len(matching) == 1, lines
    return matching[0]


def test_a_complete_environment_is_valid() -> None:
    settings = load_settings(**VALID)
    assert settings.storage_url == "memory://"
    assert settings.port == 8000


def test_several_bad_values_are_all_reported() -> None:
    lines = config_errors(**VALID, PORT="eighty", WEB_CONCURRENCY="0", LOG_LEVEL="LOUD", SATCHEL_SIGNUP="maybe")
    assert line_for(lines, "PORT") == "PORT: expected a whole number, found 'eighty'"
    assert line_for(lines, "WEB_CONCURRENCY") == "WEB_CONCURRENCY: expected a number of at least 1, found '0'"
    assert "expected" in line_for(lines, "LOG_LEVEL")
    assert "'LOUD'" in line_for(lines, "LOG_LEVEL")
    assert line_for(lines, "SATCHEL_SIGNUP") == "SATCHEL_SIGNUP: expected 'open', 'invite' or 'closed', found 'maybe'"
    assert len(lines) == 4


def test_a_missing_required_variable_says_it_is_not_set() -> None:
    lines = config_errors(**{k: v for k, v in VALID.items() if k != "DATABASE_URL"})
    assert lines == ["DATABASE_URL: required, but not set"]


def test_every_missing_required_variable_is_reported() -> None:
    lines = config_errors()
    assert sorted(lines) == sorted(f"{name}: required, but not set" for name in VALID)


def test_secrets_never_appear_in_error_lines() -> None:
    short_secret = "tiny-secret-value"
    lines = config_errors(**{**VALID, "SECRET_KEY": short_secret, "AWS_SECRET_ACCESS_KEY": 12345})
    assert (
        line_for(lines, "SECRET_KEY")
        == f"SECRET_KEY: expected at least 32 characters, found {len(short_secret)} characters (hidden)"
    )
    assert "(hidden)" in line_for(lines, "AWS_SECRET_ACCESS_KEY")
    text = "\n".join(lines)
    assert short_secret not in text
    assert "12345" not in text


def test_secrets_and_url_passwords_are_redacted_in_describe() -> None:
    settings = load_settings(**VALID, AWS_SECRET_ACCESS_KEY="aws-very-secret")
    shown = {entry.name: entry.value for entry in describe(settings)}
    assert shown["SECRET_KEY"] == "********"
    assert shown["AWS_SECRET_ACCESS_KEY"] == "********"
    assert shown["DATABASE_URL"] == "postgresql://satchel:***@db.internal:5432/satchel"
    assert shown["REDIS_URL"] == "redis://***@cache.internal:6379/0"
    text = repr(list(describe(settings)))
    for secret in (SECRET, "aws-very-secret", "dbpass", "redispass"):
        assert secret not in text


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("postgresql://user:pw@host:5432/db?sslmode=require", "postgresql://user:***@host:5432/db?sslmode=require"),
        ("redis://:pw@host:6379/0", "redis://***@host:6379/0"),
        ("amqp://guest@host//", "amqp://guest@host//"),
        ("memory://", "memory://"),
    ],
)
def test_redact_url_hides_only_the_password(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


def test_redact_url_keeps_an_ipv6_host_valid() -> None:
    assert redact_url("postgresql://user:pw@[::1]:5432/db") == "postgresql://user:***@[::1]:5432/db"


def test_the_broker_defaults_to_redis() -> None:
    settings = load_settings(**VALID)
    assert settings.broker_url is None
    assert settings.effective_broker_url == VALID["REDIS_URL"]


def test_links_made_outside_a_request_point_at_the_public_url_else_this_host() -> None:
    assert load_settings(**VALID, SATCHEL_PUBLIC_URL="https://files.example.com/").links_base == (
        "https://files.example.com"
    )
    assert load_settings(**VALID, PORT="8123").links_base == "http://localhost:8123"


def test_an_amqp_broker_is_accepted() -> None:
    settings = load_settings(**VALID, BROKER_URL="amqp://guest:guest@rabbit:5672//")
    assert settings.effective_broker_url == "amqp://guest:guest@rabbit:5672//"


@pytest.mark.parametrize(
    ("name", "value", "supported"),
    [
        ("STORAGE_URL", "ftp://x", "file:// or s3:// or memory://"),
        ("BROKER_URL", "kafka://x", "redis:// or rediss:// or amqp:// or amqps://"),
        ("EMAIL_URL", "http://x", "smtp:// or smtps:// or console://"),
        ("DATABASE_URL", "mysql://x", "postgresql://"),
    ],
)
def test_an_unsupported_scheme_lists_the_supported_ones(name: str, value: str, supported: str) -> None:
    lines = config_errors(**{**VALID, name: value})
    scheme = value.split(":")[0]
    assert line_for(lines, name).startswith(f"{name}: expected a URL starting ")
    assert supported in line_for(lines, name)
    assert line_for(lines, name).endswith(f"found {scheme}://")


def test_describe_says_where_each_value_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY"):
        monkeypatch.setenv(name, VALID[name])
    Path(".env").write_text("STORAGE_URL=memory://\nSATCHEL_SHARE_MAX_DAYS=7\n", encoding="utf-8")
    settings = load_settings()
    sources = {entry.name: entry.source for entry in describe(settings)}
    assert sources["DATABASE_URL"] == "environment"
    assert sources["SECRET_KEY"] == "environment"
    assert sources["STORAGE_URL"] == ".env"
    assert sources["SATCHEL_SHARE_MAX_DAYS"] == ".env"
    assert settings.share_max_days == 7
    assert sources["PORT"] == "default"


def test_the_environment_wins_over_the_env_file(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in VALID.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PORT", "9000")
    Path(".env").write_text("PORT=7000\n", encoding="utf-8")
    settings = load_settings()
    assert settings.port == 9000
    assert {e.name: e.source for e in describe(settings)}["PORT"] == "environment"


def test_required_scanning_without_a_scanner_is_an_error() -> None:
    lines = config_errors(**VALID, SATCHEL_SCAN_REQUIRED="true")
    assert len(lines) == 1
    assert "SATCHEL_SCAN_REQUIRED" in lines[0]
    assert "CLAMAV_URL" in lines[0]


def test_required_scanning_with_a_scanner_is_valid() -> None:
    settings = load_settings(**VALID, SATCHEL_SCAN_REQUIRED="true", CLAMAV_URL="tcp://clamav:3310")
    assert settings.scan_required


def test_required_scanning_is_reported_alongside_other_bad_values() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(**{**VALID, "PORT": "eighty", "SATCHEL_SCAN_REQUIRED": "true"})
    names = [line.split(":")[0] for line in caught.value.lines]
    assert names == ["PORT", "SATCHEL_SCAN_REQUIRED"]


def test_the_default_share_expiry_cannot_exceed_the_maximum() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(**{**VALID, "SATCHEL_SHARE_MAX_DAYS": "5", "SATCHEL_SHARE_DEFAULT_DAYS": "7"})
    assert caught.value.lines == ["SATCHEL_SHARE_DEFAULT_DAYS: expected at most SATCHEL_SHARE_MAX_DAYS (5), found 7"]


def test_an_ended_links_record_is_kept_thirty_days_unless_told_otherwise() -> None:
    assert load_settings(**VALID).share_history_days == 30
    assert load_settings(**VALID, SATCHEL_SHARE_HISTORY_DAYS="0").share_history_days == 0, "0: no history at all"
    assert load_settings(**VALID, SATCHEL_SHARE_HISTORY_DAYS="365").share_history_days == 365
    refused = {
        "-1": "expected a number of at least 0, found '-1'",
        "3651": "expected a number of at most 3650, found '3651'",
        "a month": "expected a whole number, found 'a month'",
    }
    for bad, why in refused.items():
        lines = config_errors(**VALID, SATCHEL_SHARE_HISTORY_DAYS=bad)
        assert line_for(lines, "SATCHEL_SHARE_HISTORY_DAYS") == f"SATCHEL_SHARE_HISTORY_DAYS: {why}"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("REDIS_URL", "redis://localhost:99999/0", "REDIS_URL: expected a port from 1 to 65535, found 99999"),
        ("REDIS_URL", "redis://localhost:0/0", "REDIS_URL: expected a port from 1 to 65535, found 0"),
        (
            "EMAIL_URL",
            "smtp://host:notaport",
            "EMAIL_URL: expected a port from 1 to 65535, found a port that is not a number",
        ),
        ("STORAGE_URL", "s3://", "STORAGE_URL: expected a bucket (s3://bucket or s3://bucket/prefix), found none"),
        ("STORAGE_URL", "file://", "STORAGE_URL: expected a path (file:///absolute/path), found none"),
        ("REDIS_URL", "redis:///0", "REDIS_URL: expected a host (redis://host:port), found none"),
        ("BROKER_URL", "amqp://guest:guest@:5672//", "BROKER_URL: expected a host (amqp://host:port), found none"),
        ("EMAIL_URL", "smtps://", "EMAIL_URL: expected a host (smtps://host:port), found none"),
        ("CLAMAV_URL", "tcp://:3310", "CLAMAV_URL: expected a host (tcp://host:port), found none"),
        ("AWS_ENDPOINT_URL", "http://", "AWS_ENDPOINT_URL: expected a host (http://host:port), found none"),
        (
            "SATCHEL_PUBLIC_URL",
            "https://files.example:https",
            "SATCHEL_PUBLIC_URL: expected a port from 1 to 65535, found a port that is not a number",
        ),
        (
            "DATABASE_URL",
            "postgresql://db:654321/satchel",
            "DATABASE_URL: expected a port from 1 to 65535, found 654321",
        ),
        ("REDIS_URL", "redis://[::1:6379/0", "REDIS_URL: expected a URL, found one that cannot be parsed"),
    ],
)
def test_a_url_that_cannot_be_connected_to_is_refused_naming_its_variable(name: str, value: str, expected: str) -> None:
    assert config_errors(**{**VALID, name: value}) == [expected]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "postgresql:///satchel?host=/run/postgresql"),  # a local socket needs no host
        ("DATABASE_URL", "postgresql+psycopg://satchel:pw@[::1]:5432/satchel"),
        ("REDIS_URL", "unix:///run/redis/redis.sock"),
        ("REDIS_URL", "rediss://:pw@cache.internal:6380/0"),
        ("BROKER_URL", "amqps://user:pa:ss@rabbit.internal:5671/vhost"),
        ("STORAGE_URL", "s3://bucket/prefix"),
        ("STORAGE_URL", "file://./.satchel/objects"),
        ("STORAGE_URL", "file:///var/lib/satchel"),
        ("EMAIL_URL", "smtp://user:pass@mail.internal:587?from=files@example.test"),
        ("EMAIL_URL", "console://"),
        ("CLAMAV_URL", "tcp://clamav:3310"),
        ("SATCHEL_PUBLIC_URL", "https://files.example.test"),
    ],
)
def test_urls_satchel_can_connect_with_are_accepted(name: str, value: str) -> None:
    load_settings(**{**VALID, name: value})


def test_a_bad_url_error_never_shows_its_credentials() -> None:
    lines = config_errors(**{**VALID, "REDIS_URL": "redis://:hunter2", "EMAIL_URL": "smtp://mailer:pa55word"})
    assert line_for(lines, "REDIS_URL") == "REDIS_URL: expected a host (redis://host:port), found none"
    assert "pa55word" not in "\n".join(lines) and "hunter2" not in "\n".join(lines)


def test_trusted_proxies_default_to_none() -> None:
    assert load_settings(**VALID).forwarded_allow_ips == ""


@pytest.mark.parametrize("value", ["127.0.0.1", "10.0.0.0/8, 192.168.1.5", "::1,fd00::/8", "*"])
def test_trusted_proxies_are_addresses_networks_or_everyone(value: str) -> None:
    assert load_settings(**VALID, FORWARDED_ALLOW_IPS=value).forwarded_allow_ips == value


@pytest.mark.parametrize("value", ["proxy.internal", "10.0.0.1/8", "300.1.1.1"])
def test_trusted_proxies_that_are_not_addresses_are_refused(value: str) -> None:
    line = line_for(config_errors(**VALID, FORWARDED_ALLOW_IPS=value), "FORWARDED_ALLOW_IPS")
    assert line.startswith("FORWARDED_ALLOW_IPS: expected IP addresses or networks") and repr(value) in line


def test_a_file_variable_sets_the_setting_from_the_file_content(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "secret_key"
    secret.write_text(SECRET + "\n")  # the newline an editor or `echo` adds is not part of the secret
    database = tmp_path / "database_url"
    database.write_text(VALID["DATABASE_URL"])
    monkeypatch.setenv("SECRET_KEY_FILE", str(secret))
    monkeypatch.setenv("DATABASE_URL_FILE", str(database))
    settings = load_settings(REDIS_URL=VALID["REDIS_URL"], STORAGE_URL="memory://")
    assert settings.secret_key.get_secret_value() == SECRET
    assert settings.database_url == VALID["DATABASE_URL"]
    sources = {entry.name: entry.source for entry in describe(settings)}
    assert sources["SECRET_KEY"] == sources["DATABASE_URL"] == "file"
    assert SECRET not in repr(list(describe(settings)))


def test_a_file_variable_is_validated_like_the_variable_itself(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    short = tmp_path / "secret_key"
    short.write_text("too-short")
    monkeypatch.setenv("SECRET_KEY_FILE", str(short))
    lines = config_errors(**{k: v for k, v in VALID.items() if k != "SECRET_KEY"})
    assert line_for(lines, "SECRET_KEY") == "SECRET_KEY: expected at least 32 characters, found 9 characters (hidden)"


def test_an_unreadable_file_variable_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "missing"))
    lines = config_errors(**{k: v for k, v in VALID.items() if k != "SECRET_KEY"})
    assert lines == [
        f"SECRET_KEY_FILE: expected a readable UTF-8 file, found '{tmp_path / 'missing'}' (no such file or directory)"
    ]


def test_a_variable_and_its_file_variable_together_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "secret_key"
    secret.write_text(SECRET)
    monkeypatch.setenv("SECRET_KEY_FILE", str(secret))
    monkeypatch.setenv("SECRET_KEY", SECRET)
    assert config_errors() == ["SECRET_KEY_FILE: expected either SECRET_KEY or SECRET_KEY_FILE, found both set"]


@pytest.mark.parametrize("value", ["web 1", "a" * 65, "web/1", ""])
def test_the_instance_name_must_be_a_plain_host_name(value: str) -> None:
    line_for(config_errors(**VALID, SATCHEL_INSTANCE=value), "SATCHEL_INSTANCE")


def test_no_instance_name_is_sent_unless_the_operator_gives_one() -> None:
    assert load_settings(**VALID).instance is None  # host names are not the public's business by default


def test_a_file_variable_larger_than_a_secret_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    huge = tmp_path / "not-a-secret"
    huge.write_bytes(b"x" * (64 * 1024 + 1))
    monkeypatch.setenv("SECRET_KEY_FILE", str(huge))
    lines = config_errors(**{k: v for k, v in VALID.items() if k != "SECRET_KEY"})
    assert lines == [f"SECRET_KEY_FILE: expected at most 64 KiB, found '{huge}' larger"]


def test_the_metrics_port_cannot_be_the_public_port() -> None:
    lines = config_errors(**VALID, PORT="8000", SATCHEL_METRICS_PORT="8000")
    assert line_for(lines, "SATCHEL_METRICS_PORT") == (
        "SATCHEL_METRICS_PORT: expected a port other than PORT (8000): metrics are not served on the public port"
    )


def test_previews_come_from_the_apps_own_origin_unless_another_is_named() -> None:
    assert load_settings(**VALID).preview_origin is None
    apart = load_settings(
        **VALID,
        SATCHEL_PUBLIC_URL="https://files.example.com",
        SATCHEL_PREVIEW_ORIGIN="https://Preview.Example.NET:443/",
    )
    assert apart.preview_origin == "https://preview.example.net", "an origin, as browsers compare them"


@pytest.mark.parametrize(
    ("public", "origin", "expected"),
    [
        (None, "https://preview.example.net", "expected SATCHEL_PUBLIC_URL to be set too"),
        (
            "https://files.example.com",
            "https://files.example.com:443",
            "expected an origin other than SATCHEL_PUBLIC_URL",
        ),
        ("https://files.example.com", "https://preview.example.net/p", "expected an origin alone"),
        ("https://files.example.com", "https://preview.example.net/?x=1", "expected an origin alone"),
        ("https://files.example.com", "ftp://preview.example.net", "expected a URL starting http:// or https://"),
    ],
    ids=["without the app's url", "the app's own origin", "a path", "a query", "not http"],
)
def test_a_preview_origin_is_an_origin_apart_from_the_apps(public: str | None, origin: str, expected: str) -> None:
    given = {**VALID, "SATCHEL_PREVIEW_ORIGIN": origin} | ({"SATCHEL_PUBLIC_URL": public} if public else {})
    assert line_for(config_errors(**given), "SATCHEL_PREVIEW_ORIGIN").startswith(f"SATCHEL_PREVIEW_ORIGIN: {expected}")


# --- who may open an account ------------------------------------------------------------------------


def test_sign_up_is_by_invitation_unless_the_environment_says_otherwise() -> None:
    settings = load_settings(**VALID)
    assert (settings.signup, settings.invitation_days) == ("invite", 7)


@pytest.mark.parametrize("policy", ["open", "invite", "closed"])
def test_each_sign_up_policy_is_taken_as_given(policy: str) -> None:
    assert load_settings(**VALID, SATCHEL_SIGNUP=policy).signup == policy


@pytest.mark.parametrize("days", ["0", "366", "a week"])
def test_an_invitation_lasts_one_day_to_a_year(days: str) -> None:
    assert line_for(config_errors(**VALID, SATCHEL_INVITATION_DAYS=days), "SATCHEL_INVITATION_DAYS")
    assert load_settings(**VALID, SATCHEL_INVITATION_DAYS="30").invitation_days == 30


RETIRED_LINE = (
    "SATCHEL_SIGNUP_ENABLED: no longer read; set SATCHEL_SIGNUP=open, invite or closed (true was open, "
    "false is closed) instead"
)


def test_the_retired_sign_up_switch_is_one_line_naming_its_replacement(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SATCHEL_SIGNUP_ENABLED", "false")
    assert config_errors(**VALID) == [RETIRED_LINE], "never ignored: sign-up must not open where it was closed"
    assert config_errors(**VALID, PORT="eighty") == [RETIRED_LINE, "PORT: expected a whole number, found 'eighty'"]


def test_the_retired_sign_up_switch_is_found_in_the_env_file_and_as_a_file_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("SATCHEL_SIGNUP_ENABLED=true\n")
    assert config_errors(**VALID) == [RETIRED_LINE]
    (tmp_path / ".env").unlink()
    monkeypatch.setenv("SATCHEL_SIGNUP_ENABLED_FILE", str(tmp_path / "signup"))
    assert config_errors(**VALID) == [RETIRED_LINE]


# --- password resets and the identity provider ----------------------------------------------------


def test_a_reset_link_lasts_an_hour_unless_told_otherwise_within_bounds() -> None:
    assert load_settings(**VALID).password_reset_minutes == 60
    assert load_settings(**VALID, SATCHEL_PASSWORD_RESET_MINUTES="15").password_reset_minutes == 15
    for minutes in ("0", "4", "1441", "soon"):
        assert line_for(
            config_errors(**VALID, SATCHEL_PASSWORD_RESET_MINUTES=minutes), "SATCHEL_PASSWORD_RESET_MINUTES"
        )


OIDC = {"OIDC_ISSUER": "https://id.example.test", "OIDC_CLIENT_ID": "satchel", "OIDC_CLIENT_SECRET": "s3cret-value"}


def test_the_identity_provider_is_all_three_settings_or_none_in_one_line() -> None:
    assert not load_settings(**VALID).oidc_configured
    settings = load_settings(**VALID, **OIDC, OIDC_PROVIDER_NAME="Example ID")
    assert settings.oidc_configured and settings.oidc_provider_name == "Example ID"
    for missing in OIDC:
        given = {k: v for k, v in OIDC.items() if k != missing}
        errors = config_errors(**VALID, **given)
        [line] = [e for e in errors if "OIDC" in e]
        assert "all set or none" in line and missing in line
    bad = config_errors(**VALID, **{**OIDC, "OIDC_ISSUER": "ftp://id.example.test"})
    assert line_for(bad, "OIDC_ISSUER")


def test_the_client_secret_is_a_secret_and_may_come_from_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = tmp_path / "oidc-secret"
    secret_file.write_text("from-a-file\n")
    monkeypatch.setenv("OIDC_CLIENT_SECRET_FILE", str(secret_file))
    settings = load_settings(**VALID, OIDC_ISSUER=OIDC["OIDC_ISSUER"], OIDC_CLIENT_ID="satchel")
    assert settings.oidc_client_secret is not None and settings.oidc_client_secret.get_secret_value() == "from-a-file"
    shown = {entry.name: entry for entry in describe(settings)}["OIDC_CLIENT_SECRET"]
    assert (shown.value, shown.source) == ("********", "file")
    assert "s3cret-value" not in "\n".join(config_errors(**VALID, **{**OIDC, "OIDC_CLIENT_ID": ""}))
