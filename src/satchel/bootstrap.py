"""The composition root: settings -> adapters -> services, in one place.

Each backing service is opened and closed here symmetrically; the web lifespan,
the worker and the admin commands all build their world through this module.
"""

from __future__ import annotations

from dataclasses import dataclass

from satchel.adapters.db.engine import Database
from satchel.adapters.mail import open_mailer
from satchel.adapters.redis import Redis
from satchel.adapters.storage import ObstoreStorage, open_storage
from satchel.ports import Mailer, Probe
from satchel.settings import Settings


@dataclass
class Services:
    """Every backing service of one process, opened from the settings."""

    settings: Settings
    database: Database
    redis: Redis
    storage: ObstoreStorage
    mailer: Mailer

    @property
    def probes(self) -> list[Probe]:
        return [self.database, self.redis, self.storage]

    async def close(self) -> None:
        await self.redis.close()
        await self.database.close()


def open_services(settings: Settings) -> Services:
    """Connect to what the settings name. Pools open lazily, so this never blocks."""
    return Services(
        settings=settings,
        database=Database(settings.database_url, pool_size=10),
        redis=Redis(settings.redis_url),
        storage=open_storage(settings),
        mailer=open_mailer(settings.email_url),
    )
