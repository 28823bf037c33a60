"""What every command starts from: valid settings, this process's logging, the backing services for one use case."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import typer

if TYPE_CHECKING:
    from satchel.bootstrap import Services
    from satchel.settings import Settings

T = TypeVar("T")

EX_UNAVAILABLE = 69  # sysexits.h: a service is unavailable
EX_CONFIG = 78  # sysexits.h: configuration error


def valid_settings(process: str) -> Settings:
    """Load and validate the settings, or exit with one line per problem and no traceback."""
    from satchel.settings import ConfigError, load_settings

    try:
        return load_settings()
    except ConfigError as exc:
        for line in exc.lines:
            typer.echo(f"satchel {process}: config error: {line}", err=True)
        raise typer.Exit(EX_CONFIG) from None


def process_settings(process: str) -> Settings:
    """Valid settings, with this process's logging configured from them."""
    settings = valid_settings(process)
    from satchel.runtime.logging import configure_logging

    configure_logging(process=process, release=settings.release_id, level=settings.log_level, fmt=settings.log_format)
    return settings


def run_use_case(work: Callable[[Services], Awaitable[T]], settings: Settings | None = None) -> T:
    """Run one use case against the backing services, then close them: a one-off admin process."""
    settings = settings or process_settings("admin")
    import asyncio

    from satchel.bootstrap import open_services
    from satchel.domain.errors import DomainError
    from satchel.ports.health import ServiceUnavailable

    async def session() -> T:
        services = open_services(settings)
        try:
            return await work(services)
        finally:
            await services.close()

    try:
        return asyncio.run(session())
    except DomainError as exc:
        typer.echo(f"satchel: {exc.message}", err=True)
        raise typer.Exit(1) from None
    except ServiceUnavailable as exc:  # an outage, said in one line: the operator runs the command again later
        typer.echo(f"satchel: {exc.service} is unavailable ({exc.reason}); try again once it is back", err=True)
        raise typer.Exit(EX_UNAVAILABLE) from None
