"""The composition root: settings -> adapters -> services, in one place.

Each backing service is opened and closed here symmetrically; the web lifespan,
the worker and the admin commands all build their world through this module.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import timedelta

from satchel.adapters.clamav import ClamdScanner
from satchel.adapters.db.engine import Database
from satchel.adapters.db.jobs import SqlJobQueue, SqlOutboxCensus, SqlSweepLedger
from satchel.adapters.db.revisions import SchemaProbe
from satchel.adapters.db.unit_of_work import SqlUnitOfWork
from satchel.adapters.db.uploads import AdvisoryUploadLocks
from satchel.adapters.images import PillowThumbnailer
from satchel.adapters.mail import open_mailer
from satchel.adapters.oidc import OidcProvider
from satchel.adapters.passwords import Argon2Hasher
from satchel.adapters.redis import Redis, RedisRateLimiter, RedisSessionStore
from satchel.adapters.storage import ObstoreStorage, open_storage
from satchel.domain.accounts import SignupPolicy
from satchel.ports.health import Probe
from satchel.ports.jobs import JobQueue, OutboxCensus, SweepLedger
from satchel.ports.mail import Mailer
from satchel.ports.persistence import UnitOfWorkFactory
from satchel.services.accounts import Accounts
from satchel.services.administration import Administration, People, SignupTerms
from satchel.services.background import Background
from satchel.services.expiry import Expiry
from satchel.services.files import Files
from satchel.services.imports import Imports
from satchel.services.invitations import Invitations
from satchel.services.jobs import JobsAdmin
from satchel.services.password_resets import PasswordResets
from satchel.services.previews import Previews
from satchel.services.provider_sign_in import ProviderSignIn
from satchel.services.request_uploads import RequestUploads
from satchel.services.requests import Requests
from satchel.services.sharing import Sharing
from satchel.services.storage_check import StorageCheck
from satchel.services.uploads import Uploads
from satchel.services.users import UserAdmin
from satchel.settings import Settings


@dataclass
class Services:
    """Every backing service of one process, and the use cases built on them."""

    settings: Settings
    database: Database
    redis: Redis
    storage: ObstoreStorage
    mailer: Mailer
    uow: UnitOfWorkFactory = field(init=False)  # one transaction on the database, for every use case
    schema: SchemaProbe = field(init=False)  # readiness: is the release step done for this code?
    sessions: RedisSessionStore = field(init=False)
    accounts: Accounts = field(init=False)
    users: UserAdmin = field(init=False)
    invitations: Invitations = field(init=False)
    password_resets: PasswordResets = field(init=False)
    provider_sign_in: ProviderSignIn | None = field(init=False)  # None unless OIDC_ISSUER names a provider
    files: Files = field(init=False)
    uploads: Uploads = field(init=False)
    sharing: Sharing = field(init=False)
    previews: Previews = field(init=False)
    imports: Imports = field(init=False)
    requests: Requests = field(init=False)
    request_uploads: RequestUploads = field(init=False)
    expiry: Expiry = field(init=False)
    jobs: JobsAdmin = field(init=False)
    administration: Administration = field(init=False)
    storage_check: StorageCheck = field(init=False)
    background: Background = field(init=False)
    job_queue: JobQueue = field(init=False)  # the worker's side of the outbox
    sweeps: SweepLedger = field(init=False)

    def __post_init__(self) -> None:
        def uow() -> SqlUnitOfWork:
            return SqlUnitOfWork(self.database)

        self.uow = uow
        self.schema = SchemaProbe(self.database)
        self.sessions = RedisSessionStore(self.redis)
        passwords = Argon2Hasher()
        limiter = RedisRateLimiter(self.redis)  # sign-in and share passwords: refused while Redis is down
        self._accounts(passwords, limiter)
        self._files()
        self._sharing(passwords, limiter)
        self._operations()

    def _accounts(self, passwords: Argon2Hasher, limiter: RedisRateLimiter) -> None:
        s, uow = self.settings, self.uow
        signup = SignupPolicy(s.signup)
        secret = s.secret_key.get_secret_value().encode()
        self.accounts = Accounts(uow, passwords, limiter, default_quota=s.default_quota_bytes, signup=signup)
        self.users = UserAdmin(uow)
        self.invitations = Invitations(
            uow, passwords, signup=signup, key=secret, days=s.invitation_days, default_quota=s.default_quota_bytes
        )
        self.password_resets = PasswordResets(uow, passwords, limiter, key=secret, minutes=s.password_reset_minutes)
        self.provider_sign_in = (
            ProviderSignIn(
                uow, passwords, open_identity_provider(s), signup=signup, default_quota=s.default_quota_bytes
            )
            if s.oidc_configured
            else None
        )
        terms = SignupTerms(signup, s.invitation_days, s.default_quota_bytes)
        self._people = People(self.accounts, self.users, self.invitations, terms)

    def _files(self) -> None:
        s, uow = self.settings, self.uow
        upload_limiter = RedisRateLimiter(self.redis, fail_open=True)  # signed-in users keep uploading
        self.files = Files(
            uow, self.storage, upload_limiter, max_upload_bytes=s.max_upload_bytes, scanning=s.clamav_url is not None
        )
        self._upload_locks = AdvisoryUploadLocks(s.database_url, self.database.guard)
        self.uploads = Uploads(
            uow,
            self.storage.staging,
            self._upload_locks,
            self.files,
            max_upload_bytes=s.max_upload_bytes,
            expire_after=timedelta(hours=s.upload_expiry_hours),
        )
        self.previews = Previews(uow, self.storage, key=preview_pass_key(s), scan_required=s.scan_required)

    def _sharing(self, passwords: Argon2Hasher, limiter: RedisRateLimiter) -> None:
        s, uow = self.settings, self.uow
        max_days, default_days = s.share_max_days, s.share_default_days  # links to files and for files alike
        self.sharing = Sharing(
            uow, passwords, limiter, max_days=max_days, default_days=default_days, scan_required=s.scan_required
        )
        self.imports = Imports(uow, self.files, self.sharing)
        self.requests = Requests(uow, self.files, passwords, limiter, max_days=max_days, default_days=default_days)
        self.request_uploads = RequestUploads(uow, self.requests, self.uploads)

    def _operations(self) -> None:
        """What operators and workers use: the sweep, jobs, the console, storage checks, background work."""
        s, uow = self.settings, self.uow
        self.expiry = Expiry(uow, self.storage, self.uploads, history_days=s.share_history_days)
        self.jobs = JobsAdmin(uow)
        self.administration = Administration(uow, self.files, self.sharing, self.jobs, self._people)
        self.storage_check = StorageCheck(uow, self.storage, self.storage.staging)
        self.background = Background(
            uow,
            self.storage,
            self.mailer,
            scanner=ClamdScanner(s.clamav_url) if s.clamav_url else None,
            thumbnailer=PillowThumbnailer(),
            base_url=s.links_base,
            invitation_key=s.secret_key.get_secret_value().encode(),
            resets=self.password_resets,
        )
        self.job_queue = SqlJobQueue(self.database.engine, s.database_url)
        self.sweeps = SqlSweepLedger(self.database.engine)

    @property
    def probes(self) -> list[Probe]:
        return [self.database, self.schema, self.redis, self.storage]

    async def close(self) -> None:
        await self._upload_locks.close()
        await self.redis.close()
        await self.database.close()


def open_identity_provider(settings: Settings) -> OidcProvider:
    """The OpenID Connect provider the settings name; it is read from (discovery) at first use only."""
    assert settings.oidc_issuer and settings.oidc_client_id and settings.oidc_client_secret, "all three, or none"
    return OidcProvider(
        settings.oidc_issuer,
        settings.oidc_client_id,
        settings.oidc_client_secret.get_secret_value(),
        name=settings.oidc_provider_name,
        timeout=settings.oidc_timeout,
    )


def preview_pass_key(settings: Settings) -> bytes:
    """The key preview passes are signed with: derived from SECRET_KEY, and used to sign nothing else."""
    secret = settings.secret_key.get_secret_value().encode()
    return hmac.new(secret, b"satchel preview passes", hashlib.sha256).digest()


def open_services(settings: Settings, *, pooled: bool = True) -> Services:
    """Connect to what the settings name. Pools open lazily, so this never blocks.

    ``pooled=False`` (jobs and one-off commands, each on a short-lived event loop) opens a
    fresh connection per unit of work instead of keeping a pool bound to one loop.
    """
    return Services(
        settings=settings,
        database=Database(settings.database_url, pool_size=10 if pooled else 0, timeout=settings.database_timeout),
        redis=Redis(settings.redis_url, timeout=settings.redis_timeout, verify_tls=settings.redis_tls_verify),
        storage=open_storage(settings),
        mailer=open_mailer(settings.email_url),
    )


def open_outbox_census(database_url: str, timeout: float) -> OutboxCensus:
    """The outbox's numbers for a metrics scrape, each count answered within ``timeout`` seconds or not at all."""
    return SqlOutboxCensus(database_url, timeout)
