"""The unit of work of ``satchel.ports`` on PostgreSQL: one transaction, every repository inside it."""

from __future__ import annotations

from satchel.adapters.db.accounts import SqlTokens, SqlUsers
from satchel.adapters.db.audit import SqlAudit
from satchel.adapters.db.engine import Database, GuardedConnection
from satchel.adapters.db.files import SqlFiles
from satchel.adapters.db.identities import SqlIdentities, SqlPasswordResets
from satchel.adapters.db.invitations import SqlInvitations
from satchel.adapters.db.jobs import SqlJobs
from satchel.adapters.db.requests import SqlUploadRequests
from satchel.adapters.db.sharing import SqlShares
from satchel.adapters.db.uploads import SqlUploads


class SqlUnitOfWork:
    """One transaction on one pooled connection; rolled back unless committed.

    Every round trip, from the check-out to the rollback, runs under the database's guard.
    """

    users: SqlUsers
    tokens: SqlTokens
    files: SqlFiles
    shares: SqlShares
    jobs: SqlJobs
    uploads: SqlUploads
    requests: SqlUploadRequests
    invitations: SqlInvitations
    password_resets: SqlPasswordResets
    identities: SqlIdentities
    audit: SqlAudit

    def __init__(self, database: Database) -> None:
        self._database = database
        self._conn: GuardedConnection | None = None

    async def __aenter__(self) -> SqlUnitOfWork:
        self._conn = await self._database.connect()
        self.users = SqlUsers(self._conn)
        self.tokens = SqlTokens(self._conn)
        self.files = SqlFiles(self._conn)
        self.shares = SqlShares(self._conn, self.files)
        self.jobs = SqlJobs(self._conn)
        self.uploads = SqlUploads(self._conn)
        self.requests = SqlUploadRequests(self._conn)
        self.invitations = SqlInvitations(self._conn)
        self.password_resets = SqlPasswordResets(self._conn)
        self.identities = SqlIdentities(self._conn)
        self.audit = SqlAudit(self._conn)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._conn is not None
        conn, self._conn = self._conn, None
        await conn.release()

    async def commit(self) -> None:
        assert self._conn is not None
        await self._conn.commit()
        self.audit.committed()  # logged only once kept
