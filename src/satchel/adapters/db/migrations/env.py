"""Alembic environment: the URL comes from Satchel's settings, never from an ini file."""

from __future__ import annotations

from alembic import context

from satchel.adapters.db.engine import sync_engine
from satchel.adapters.db.migrate import MIGRATION_LOCK
from satchel.adapters.db.schema import metadata

engine = sync_engine(context.config.attributes["database_url"])
try:
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            # Set once the migration lock is held, so another release step still waits its turn. A table that
            # another session holds is waited for this long, not for ever: while a migration waits for a
            # table, every request that needs the table queues behind it.
            lock_timeout = round(context.config.attributes.get("lock_timeout", 10) * 1000)
            connection.exec_driver_sql(f"SET LOCAL lock_timeout = {lock_timeout}")
            context.run_migrations()
finally:
    engine.dispose()
