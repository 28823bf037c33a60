"""The background-job tier on real services: outbox, runner, relay, sweep, and the jobs themselves.

Jobs are run in-process by ``runner.run_job`` on the app's event loop, each on services of its own
without a connection pool (see ``run``). Mail goes to a real SMTP server on loopback, scans to a real
clamd (the ``clamd`` fixture), thumbnails through Pillow, bytes to file storage under ``tmp_path``.
"""

from __future__ import annotations

import asyncio
import functools
import io
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from PIL import Image

from satchel.adapters.db.engine import lock_key
from satchel.adapters.db.jobs import SqlJobs
from satchel.adapters.db.schema import files, jobs, shares, sweeps, users
from satchel.adapters.jobs import CeleryJobPublisher
from satchel.bootstrap import open_services
from satchel.domain.errors import NotFound
from satchel.domain.jobs import Job
from satchel.runtime.embedded import free_port
from satchel.worker.relay import Relay
from satchel.worker.runner import run_job

from support import clamd as clamd_support
from support.app import App, AppFactory
from support.smtp import Mailbox, smtp_server

PUBLIC_URL = "https://satchel.example.test"
SIGNATURE = f"{clamd_support.SIGNATURE}.UNOFFICIAL"  # how clamd names a signature from a local .ndb


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


def _path(url: str) -> str:
    return url.removeprefix(PUBLIC_URL).removeprefix("http://satchel.test")


def run(app: App, job_id: str) -> str:
    """Run one job on a runtime of its own (services without a pool, closed after), like a worker process
    whose connections end with the job. Not on ``app.services``: on pooled services ``run_job`` leaves the
    job's advisory lock held by an idle pooled connection (see the last test), so reruns answer "busy".

    Returns once the server has let go of the job's lock too: closing a connection does not wait for
    its backend to exit, and a test that runs the job again at once must not see it as still running.
    """

    async def work() -> str:
        services = open_services(app.services.settings, pooled=False)
        try:
            outcome = await run_job(services, job_id)
        finally:
            await services.close()
        if outcome != "busy":  # when busy, someone else holds the lock, and keeps it
            deadline = asyncio.get_running_loop().time() + 5
            while not await lock_is_free(app, job_id) and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
        return outcome

    return app.call(work)


async def lock_is_free(app: App, job_id: str) -> bool:
    """Whether no session holds the job's advisory lock (asked by taking and releasing it)."""
    key = lock_key(job_id)
    async with app.services.database.engine.connect() as conn:
        free = bool(await conn.scalar(sa.select(sa.func.pg_try_advisory_lock(key))))
        if free:
            await conn.scalar(sa.select(sa.func.pg_advisory_unlock(key)))
        await conn.commit()
    return free


def sql(app: App, statement: Any) -> Any:
    """Execute one statement in its own committed transaction; returns the result's rows, if any."""

    async def execute() -> Any:
        async with app.services.database.engine.begin() as conn:
            result = await conn.execute(statement)
            return result.all() if result.returns_rows else result.rowcount

    return app.call(execute)


def job_rows(app: App, kind: str, **payload: Any) -> list[Any]:
    """The jobs of ``kind`` whose payload holds ``payload``, oldest first."""
    rows = sql(app, sa.select(jobs).where(jobs.c.kind == kind).order_by(jobs.c.created_at))
    return [r for r in rows if all(r.payload.get(k) == v for k, v in payload.items())]


def job(app: App, job_id: str) -> Any:
    [row] = sql(app, sa.select(jobs).where(jobs.c.id == job_id))
    return row


def make_due(app: App, job_id: str) -> None:
    """Skip waiting out a retry's backoff."""
    sql(app, sa.update(jobs).where(jobs.c.id == job_id).values(available_at=sa.func.now()))


def enqueue(app: App, kind: str, payload: dict[str, Any], queue: str = "default") -> str:
    job_id: str = app.call(functools.partial(app.services.jobs.enqueue, kind, payload, queue=queue))
    return job_id


def file_info(app: App, who: Any, file_id: str) -> dict[str, Any]:
    response = app.client.get(f"/api/files/{file_id}", headers=who.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def png(size: tuple[int, int] = (800, 600), color: str = "teal") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A valid black 1-bit PNG of width x height: tens of KB on disk, width*height pixels decoded.

    Written chunk by chunk: making it with Pillow would itself need width*height bytes of memory.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack("!I", len(data)) + kind + data + struct.pack("!I", zlib.crc32(kind + data))

    row = bytes(1 + (width + 7) // 8)  # filter type 0, then eight black pixels a byte
    packer = zlib.compressobj()
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack("!IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


class RecordingBroker:
    """A recording stand-in for the Celery app the relay publishes to: it keeps every send_task call."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def send_task(self, name: str, **options: Any) -> None:
        with self._lock:
            self.sent.append({"name": name, **options})


def relay_of(app: App, broker: RecordingBroker | None = None) -> Relay:
    """A relay publishing through the real Celery publisher, to a broker that records what it was sent."""
    return Relay(app.services.settings, app.services, CeleryJobPublisher(broker or RecordingBroker()))


class ClosingClamd:
    """A FAKE clamd, for the fault case only: it accepts each connection and closes it at once."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.05)
        self.port = self._server.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._server.close()


@pytest.fixture
def closing_clamd() -> Iterator[ClosingClamd]:
    server = ClosingClamd()
    yield server
    server.close()


# --- the rules a job lives by ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "due", "may_start"),
    [
        ("pending", True, True),
        ("pending", False, False),  # waiting out its backoff: a stale delivery
        ("published", True, True),
        ("published", False, True),  # published is due already: the wait ended when it was published
        ("running", True, True),  # a worker died holding it: whoever holds it now may run it again
        ("done", True, False),
        ("failed", True, False),  # parked until an operator retries it
    ],
)
def test_a_delivery_may_start_a_job_only_while_it_is_runnable_and_due(status: str, due: bool, may_start: bool) -> None:
    now = datetime.now(UTC)
    available_at = now if due else now + timedelta(seconds=30)
    job = Job(
        id="j", kind="ping", queue="default", payload={}, status=status, attempts=1, max_attempts=5,
        available_at=available_at, published_at=None, started_at=None, finished_at=None, last_error=None,
        created_at=now,
    )  # fmt: skip
    assert job.may_start(now) is may_start


# --- mail -----------------------------------------------------------------------------------------


def test_a_mail_job_run_twice_sends_one_email(make_app: AppFactory, mailbox: Mailbox) -> None:
    with make_app(EMAIL_URL=mailbox.url, SATCHEL_PUBLIC_URL=PUBLIC_URL) as app:
        alice = app.account()
        file_id = app.upload(alice, "report.pdf", b"%PDF-1.7 report", share="false")["file"]["id"]
        share = app.share(alice, [file_id], notify=["ana@example.test"], note="for the meeting")
        [row] = job_rows(app, "mail", share_id=share["id"])
        assert row.payload == {"notice": "share_invitation", "share_id": share["id"], "recipient": "ana@example.test"}
        assert (row.status, row.queue) == ("pending", "mail")

        assert run(app, row.id) == "sent"
        assert run(app, row.id) == "skipped", "a second delivery of a done job does nothing"
        done = job(app, row.id)
        assert (done.status, done.attempts, done.last_error) == ("done", 1, None)
        assert done.finished_at is not None

    [mail] = mailbox.messages
    assert mail.rcpt_tos == ["ana@example.test"] and mail.message["To"] == "ana@example.test"
    assert row.id in mail.message["Message-ID"]
    assert share["url"].startswith(f"{PUBLIC_URL}/s/")
    assert share["url"] in mail.text and share["url"] in mail.html
    assert "report.pdf" in mail.text and alice.email in mail.text and "for the meeting" in mail.text


def test_an_invitation_to_a_titled_share_carries_the_title_in_its_subject_and_body(
    make_app: AppFactory, mailbox: Mailbox
) -> None:
    with make_app(EMAIL_URL=mailbox.url, SATCHEL_PUBLIC_URL=PUBLIC_URL) as app:
        alice = app.account()
        file_id = app.upload(alice, "deck.pdf", b"%PDF deck", share="false")["file"]["id"]
        share = app.share(alice, [file_id], notify=["ana@example.test"], title="Q3 <board> deck — été")
        [row] = job_rows(app, "mail", share_id=share["id"])
        assert run(app, row.id) == "sent"

    [mail] = mailbox.messages
    assert mail.message["Subject"] == f"{alice.email} shared “Q3 <board> deck — été” with you"
    assert "“Q3 <board> deck — été” with you: deck.pdf." in mail.text
    assert "Q3 &lt;board&gt; deck" in mail.html and "<board>" not in mail.html


def test_a_mail_job_redelivered_after_the_server_took_its_message_resends_it_under_the_same_message_id(
    make_app: AppFactory, mailbox: Mailbox
) -> None:
    """The one window no record can close: a worker killed after the mail server said 250 but before the job
    was marked done. The message goes again, as the same message: receivers drop a Message-ID they have seen.
    (A worker killed any earlier sends nothing: tests/chaos/test_job_bulkheads.py.)"""
    with make_app(EMAIL_URL=mailbox.url, SATCHEL_PUBLIC_URL=PUBLIC_URL) as app:
        alice = app.account()
        file_id = app.upload(alice, "plan.txt", b"plan", share="false")["file"]["id"]
        share = app.share(alice, [file_id], notify=["ana@example.test"])
        [row] = job_rows(app, "mail", share_id=share["id"])
        assert run(app, row.id) == "sent"
        sql(app, sa.update(jobs).where(jobs.c.id == row.id).values(status="running"))
        assert run(app, row.id) == "sent"
        assert job(app, row.id).status == "done"

    first, second = mailbox.messages
    assert first.message["Message-ID"] == second.message["Message-ID"] == f"<{row.id}@satchel>"
    assert first.text == second.text


def test_the_owner_is_notified_once_on_a_shares_first_download(make_app: AppFactory, mailbox: Mailbox) -> None:
    with make_app(EMAIL_URL=mailbox.url, SATCHEL_PUBLIC_URL=PUBLIC_URL) as app:
        alice = app.account()
        share = app.upload(alice, "photos.zip", b"zip bytes")["share"]
        assert job_rows(app, "mail", share_id=share["id"]) == [], "no mail before anyone downloads"
        for _ in range(2):
            assert app.client.get(_path(share["url"]) + "/download").status_code == 200
        [row] = job_rows(app, "mail", share_id=share["id"])
        assert row.payload == {"notice": "first_download", "share_id": share["id"]}

        assert run(app, row.id) == "sent"
        assert run(app, row.id) == "skipped"

    [mail] = mailbox.messages
    assert mail.rcpt_tos == [alice.email]
    assert "photos.zip" in mail.text and f"{PUBLIC_URL}/shares/{share['id']}" in mail.text
    assert row.id in mail.message["Message-ID"]


def test_a_failing_job_is_retried_with_growing_backoff_then_parked_and_can_be_retried(
    make_app: AppFactory, own_database: str, mailbox: Mailbox
) -> None:
    closed = f"smtp://127.0.0.1:{free_port()}"  # nothing listens there: every send is refused
    with make_app(DATABASE_URL=own_database, EMAIL_URL=closed) as app:
        alice = app.account()
        file_id = app.upload(alice, "plan.txt", b"the plan", share="false")["file"]["id"]
        share = app.share(alice, [file_id], notify=["bob@example.test"])
        [row] = job_rows(app, "mail", share_id=share["id"])
        assert row.max_attempts == 5
        delays = []
        for attempt in range(1, row.max_attempts):
            assert run(app, row.id) == "pending", "a failure schedules a retry"
            now = datetime.now(UTC)
            waiting = job(app, row.id)
            assert (waiting.status, waiting.attempts) == ("pending", attempt)
            assert "ConnectionRefusedError" in waiting.last_error
            assert waiting.available_at > now
            delays.append((waiting.available_at - waiting.started_at).total_seconds())
            assert run(app, row.id) == "skipped", "a delivery during the backoff does not run it"
            assert job(app, row.id).attempts == attempt
            make_due(app, row.id)
        assert delays == sorted(delays) and delays[0] > 1, f"backoff grows: {delays}"
        assert delays[-1] > 4 * delays[0]

        assert run(app, row.id) == "failed"
        parked = job(app, row.id)
        assert (parked.status, parked.attempts) == ("failed", 5)
        assert "ConnectionRefusedError" in parked.last_error and parked.finished_at is not None
        assert run(app, row.id) == "skipped", "a parked job stays parked"
        assert [j.id for j in app.call(functools.partial(app.services.jobs.recent, status="failed"))] == [row.id]

        app.call(app.services.jobs.retry, row.id)
        again = job(app, row.id)
        assert (again.status, again.attempts, again.last_error, again.finished_at) == ("pending", 0, None, None)
        with pytest.raises(NotFound):
            app.call(app.services.jobs.retry, row.id)  # only failed jobs can be retried
        assert mailbox.messages == []

    with make_app(DATABASE_URL=own_database, EMAIL_URL=mailbox.url) as app:
        assert run(app, row.id) == "sent"
        assert job(app, row.id).status == "done"
        assert app.call(functools.partial(app.services.jobs.recent, status="failed")) == []
    [mail] = mailbox.messages
    assert mail.rcpt_tos == ["bob@example.test"]


# --- virus scanning ---------------------------------------------------------------------------------


def test_uploads_are_scanned_by_clamd_and_infected_files_are_quarantined(
    make_app: AppFactory, clamd: clamd_support.Clamd, mailbox: Mailbox
) -> None:
    with make_app(CLAMAV_URL=clamd.url, EMAIL_URL=mailbox.url) as app:
        alice = app.account()
        clean = app.upload(alice, "clean.txt", b"nothing to see here")
        assert clean["file"]["scan_status"] == "pending"
        [scan] = job_rows(app, "scan", file_id=clean["file"]["id"])
        assert scan.queue == "scan"
        assert run(app, scan.id) == "clean"
        assert file_info(app, alice, clean["file"]["id"])["scan_status"] == "clean"
        assert run(app, scan.id) == "skipped"
        assert app.client.get(_path(clean["share"]["url"]) + "/download").content == b"nothing to see here"

        infected = app.upload(alice, "invoice.txt", b"dear customer " + clamd_support.MARKER + b" regards")
        file_id = infected["file"]["id"]
        assert infected["file"]["scan_status"] == "pending"
        [scan] = job_rows(app, "scan", file_id=file_id)
        assert run(app, scan.id) == "infected"
        assert file_info(app, alice, file_id)["scan_status"] == "infected"

        share_url = _path(infected["share"]["url"])
        for url in (share_url + "/download", share_url + f"/files/{file_id}"):
            refused = app.client.get(url)
            assert refused.status_code == 403, url
            assert refused.headers["content-type"] == "application/problem+json"
            assert clamd_support.MARKER not in refused.content
        own = app.client.get(f"/api/files/{file_id}/content", headers=alice.auth)
        assert own.status_code == 403 and own.headers["content-type"] == "application/problem+json"

        [notice] = job_rows(app, "mail", notice="quarantined", file_id=file_id)
        assert notice.payload["signature"] == SIGNATURE
        assert run(app, scan.id) == "skipped", "a rerun of the scan"
        assert len(job_rows(app, "mail", notice="quarantined", file_id=file_id)) == 1, "does not warn twice"
        assert run(app, notice.id) == "sent"

    [mail] = mailbox.messages
    assert mail.rcpt_tos == [alice.email]
    assert "invoice.txt" in mail.message["Subject"]
    assert SIGNATURE in mail.text and SIGNATURE in mail.html


def test_with_scanning_required_a_share_downloads_only_after_its_scan(
    make_app: AppFactory, clamd: clamd_support.Clamd
) -> None:
    with make_app(CLAMAV_URL=clamd.url, SATCHEL_SCAN_REQUIRED="true") as app:
        alice = app.account()
        uploaded = app.upload(alice, "fresh.txt", b"fresh bytes", max_downloads=1)
        url = _path(uploaded["share"]["url"]) + "/download"
        for _ in range(2):
            waiting = app.client.get(url)
            assert waiting.status_code == 409 and waiting.headers["content-type"] == "application/problem+json"
        owner = app.client.get(f"/api/files/{uploaded['file']['id']}/content", headers=alice.auth)
        assert owner.status_code == 200, "owners may fetch their own unscanned files"

        [scan] = job_rows(app, "scan", file_id=uploaded["file"]["id"])
        assert run(app, scan.id) == "clean"
        ok = app.client.get(url)
        assert ok.status_code == 200 and ok.content == b"fresh bytes", "the refused tries used no download"


def test_a_scan_is_retried_when_clamd_fails_and_the_file_stays_pending(
    make_app: AppFactory, closing_clamd: ClosingClamd
) -> None:
    with make_app(CLAMAV_URL=closing_clamd.url) as app:
        alice = app.account()
        file_id = app.upload(alice, "doc.txt", b"some document", share="false")["file"]["id"]
        [scan] = job_rows(app, "scan", file_id=file_id)
        assert run(app, scan.id) == "pending"
        assert closing_clamd.accepted >= 1, "the scanner did reach the (fake) clamd"
        retrying = job(app, scan.id)
        assert (retrying.status, retrying.attempts) == ("pending", 1)
        assert "clamav" in retrying.last_error
        assert retrying.available_at > datetime.now(UTC)
        assert file_info(app, alice, file_id)["scan_status"] == "pending"


def test_a_file_whose_scan_fails_for_good_is_marked_failed(make_app: AppFactory, closing_clamd: ClosingClamd) -> None:
    with make_app(CLAMAV_URL=closing_clamd.url) as app:
        alice = app.account()
        file_id = app.upload(alice, "doc.txt", b"some document", share="false")["file"]["id"]
        [scan] = job_rows(app, "scan", file_id=file_id)
        outcomes = []
        for _ in range(scan.max_attempts):
            outcomes.append(run(app, scan.id))
            make_due(app, scan.id)
        assert outcomes[-1] == "failed"
        assert file_info(app, alice, file_id)["scan_status"] == "failed"


# --- thumbnails -------------------------------------------------------------------------------------


def test_an_uploaded_image_gets_a_thumbnail_from_a_job_in_the_same_transaction(app: App) -> None:
    alice = app.account()
    file_id = app.upload(alice, "holiday.png", png(), share="false")["file"]["id"]
    assert file_info(app, alice, file_id)["has_thumbnail"] is False
    [thumb] = job_rows(app, "thumbnail", file_id=file_id)
    assert (thumb.queue, thumb.max_attempts, thumb.status) == ("media", 3, "pending")
    [(file_xid,)] = sql(app, sa.text("SELECT xmin::text FROM files WHERE id = :id").bindparams(id=file_id))
    [(job_xid,)] = sql(app, sa.text("SELECT xmin::text FROM jobs WHERE id = :id").bindparams(id=thumb.id))
    assert file_xid == job_xid, "the file row and its job were written by one transaction"

    assert run(app, thumb.id) == "made"
    assert file_info(app, alice, file_id)["has_thumbnail"] is True
    response = app.client.get(f"/api/files/{file_id}/thumbnail", headers=alice.auth)
    assert response.status_code == 200 and response.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(response.content)) as preview:
        assert preview.format == "WEBP"
        assert preview.width <= 320 and preview.height <= 320
        assert preview.size == (320, 240), "the aspect ratio is kept"
    assert run(app, thumb.id) == "skipped"


def redeliver(app: App, job_id: str, **file_values: Any) -> None:
    """Leave a job as a worker SIGKILLed mid-run leaves it: ``running``, its lock gone with the worker; and the
    file as it stood at the moment of the kill (``file_values``). The next delivery then finds exactly that."""
    sql(app, sa.update(jobs).where(jobs.c.id == job_id).values(status="running"))
    if file_values:
        [row] = sql(app, sa.select(jobs.c.payload).where(jobs.c.id == job_id))
        sql(app, sa.update(files).where(files.c.id == row.payload["file_id"]).values(**file_values))


def stored_keys(app: App, prefix: str) -> list[str]:
    async def keys() -> list[str]:
        return sorted([info.key async for info in app.services.storage.list_objects(prefix)])

    return app.call(keys)


def test_a_thumbnail_job_redelivered_after_a_kill_at_any_point_leaves_one_thumbnail(app: App) -> None:
    alice = app.account()
    file_id = app.upload(alice, "garden.png", png(), share="false")["file"]["id"]
    [thumb] = job_rows(app, "thumbnail", file_id=file_id)
    assert run(app, thumb.id) == "made"
    made = app.client.get(f"/api/files/{file_id}/thumbnail", headers=alice.auth).content

    # Killed after the thumbnail was stored but before the file row said so: the rerun writes the same key.
    redeliver(app, thumb.id, thumbnail_key=None)
    assert run(app, thumb.id) == "made"
    assert stored_keys(app, "thumbnails/") == [f"thumbnails/{file_id}.webp"], "no second thumbnail object"
    assert app.client.get(f"/api/files/{file_id}/thumbnail", headers=alice.auth).content == made

    # Killed after the file row was written but before the job was marked done: nothing is left to do.
    redeliver(app, thumb.id)
    assert run(app, thumb.id) == "skipped"
    assert stored_keys(app, "thumbnails/") == [f"thumbnails/{file_id}.webp"]
    done = job(app, thumb.id)
    assert (done.status, done.attempts) == ("done", 3), "each delivery was counted as an attempt"


def test_a_png_name_on_bytes_that_are_no_image_makes_no_thumbnail(app: App) -> None:
    alice = app.account()
    file_id = app.upload(alice, "x.png", b"this is not a picture at all", share="false")["file"]["id"]
    [thumb] = job_rows(app, "thumbnail", file_id=file_id)
    assert run(app, thumb.id) == "not an image"
    assert job(app, thumb.id).status == "done", "bad input is an outcome, not a failure to retry"
    assert file_info(app, alice, file_id)["has_thumbnail"] is False
    assert app.client.get(f"/api/files/{file_id}/thumbnail", headers=alice.auth).status_code == 404


@pytest.mark.parametrize(
    "size",
    [(20000, 20000), (8000, 6000)],
    ids=["400-megapixels-refused-by-pillow", "48-megapixels-refused-by-satchel"],
)
def test_a_decompression_bomb_makes_no_thumbnail(app: App, size: tuple[int, int]) -> None:
    bomb = bomb_png(*size)
    assert len(bomb) < 100_000, "small on disk"
    alice = app.account()
    file_id = app.upload(alice, "bomb.png", bomb, share="false")["file"]["id"]
    [thumb] = job_rows(app, "thumbnail", file_id=file_id)
    assert run(app, thumb.id) == "not an image"
    assert file_info(app, alice, file_id)["has_thumbnail"] is False
    assert app.client.get(f"/api/files/{file_id}/thumbnail", headers=alice.auth).status_code == 404


# --- the outbox and the relay -------------------------------------------------------------------------


def test_the_outbox_is_transactional(make_app: AppFactory, own_database: str, tmp_path: Path) -> None:
    broker = RecordingBroker()
    with make_app(DATABASE_URL=own_database) as app:
        relay = relay_of(app, broker)
        alice = app.account(quota=10_000)
        image = png((400, 400), "purple")
        assert len(image) < 10_000
        file_id = app.upload(alice, "ok.png", image, share="false")["file"]["id"]
        [thumb] = job_rows(app, "thumbnail")

        big = png((300, 300), "white") + bytes(10_000)
        declared = app.client.put("/api/files/big.png", content=big, headers=alice.auth)
        streamed = app.client.put("/api/files/big.png", content=iter([big[:5000], big[5000:]]), headers=alice.auth)
        assert declared.status_code == streamed.status_code == 413
        assert [r.id for r in sql(app, sa.select(jobs))] == [thumb.id], "refused uploads leave no job"
        assert [r.id for r in sql(app, sa.select(files))] == [file_id]
        [(used,)] = sql(app, sa.select(users.c.used_bytes).where(users.c.id == alice.id))
        assert used == len(image)
        stored = [p for p in (tmp_path / "objects").rglob("*") if p.is_file()]
        assert len(stored) == 1, stored

        assert app.call(relay.publish_due) == 1
        assert broker.sent == [
            {
                "name": "satchel.run_job", "args": [thumb.id], "queue": "media", "task_id": thumb.id,
                "retry": False, "headers": {"satchel_job": thumb.id},
            }
        ]  # fmt: skip
        published = job(app, thumb.id)
        assert published.status == "published" and published.published_at is not None
        assert app.call(relay.publish_due) == 0, "published once"

        async def add_then_commit() -> tuple[int, str, int]:
            async with app.services.database.engine.connect() as conn:
                await conn.begin()
                job_id = await SqlJobs(conn).add("ping", {"delay": 0}, queue="default")
                before = await relay.publish_due()
                await conn.commit()
            return before, job_id, await relay.publish_due()

        before, ping_id, after = app.call(add_then_commit)
        assert (before, after) == (0, 1), "the relay sees a job only once its transaction committed"
        assert broker.sent[-1]["task_id"] == ping_id and len(broker.sent) == 2
        assert app.call(relay.publish_due) == 0

        async def add_then_roll_back() -> None:
            async with app.services.database.engine.connect() as conn:
                await conn.begin()
                await SqlJobs(conn).add("ping", {"delay": 0}, queue="default")
                await conn.rollback()

        app.call(add_then_roll_back)
        assert app.call(relay.publish_due) == 0 and len(broker.sent) == 2
        assert len(sql(app, sa.select(jobs))) == 2


def test_recover_orphans_hands_back_only_jobs_whose_worker_is_gone(make_app: AppFactory, own_database: str) -> None:
    with make_app(DATABASE_URL=own_database) as app:
        relay = relay_of(app)
        orphan, alive = enqueue(app, "ping", {"delay": 0}), enqueue(app, "ping", {"delay": 0})
        sql(app, sa.update(jobs).values(status="running", attempts=1, started_at=sa.func.now()))
        with psycopg.connect(own_database, autocommit=True) as worker:  # a live worker holding its job's lock
            assert worker.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(alive),)).fetchone() == (True,)
            assert app.call(relay.recover_orphans) == 1
            assert (job(app, orphan).status, job(app, alive).status) == ("pending", "running")
            assert run(app, alive) == "busy", "nobody else runs a job while its worker holds it"
            assert app.call(relay.recover_orphans) == 0
        deadline = time.monotonic() + 5  # the server ends the closed session's backend on its own time
        while not app.call(lock_is_free, app, alive) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert app.call(relay.recover_orphans) == 1, "once that worker's connection is gone, so is its claim"
        assert job(app, alive).status == "pending"
        assert run(app, orphan) == run(app, alive) == "pong"
        assert {job(app, orphan).attempts, job(app, alive).attempts} == {2}


def test_only_the_first_sweep_in_a_slot_runs(make_app: AppFactory, own_database: str) -> None:
    with make_app(DATABASE_URL=own_database, SATCHEL_SWEEP_INTERVAL="3600") as app:
        alice = app.account()
        share = app.upload(alice, "old.txt", b"old")["share"]
        sql(app, sa.update(shares).values(expires_at=sa.func.now() - timedelta(hours=1)))
        first, second = relay_of(app), relay_of(app)
        assert app.call(first.maybe_sweep) is True
        assert app.call(first.maybe_sweep) is False
        assert app.call(second.maybe_sweep) is False, "another worker finds the slot taken"
        [slot] = sql(app, sa.select(sweeps))
        assert slot.worker == first.name and slot.finished_at is not None
        assert slot.purged == {"shares": 1, "files": 0, "uploads": 0, "history": 0}
        [kept] = sql(app, sa.select(shares).where(shares.c.id == share["id"]))
        assert kept.swept_at is not None, "dealt with once, its record kept as history"


def test_sweeps_are_off_when_the_interval_is_zero(make_app: AppFactory, own_database: str) -> None:
    with make_app(DATABASE_URL=own_database, SATCHEL_SWEEP_INTERVAL="0") as app:
        assert app.call(relay_of(app).maybe_sweep) is False
        assert sql(app, sa.select(sweeps)) == []


# --- expiry -----------------------------------------------------------------------------------------


def test_purge_expired_deals_with_ended_shares_and_their_files_and_gives_back_quota(
    make_app: AppFactory, own_database: str, tmp_path: Path
) -> None:
    objects = tmp_path / "objects"
    with make_app(DATABASE_URL=own_database) as app:
        alice = app.account()
        gone_data, kept_data, other_data = png((64, 64), "red"), b"still shared", b"not asked to delete"
        gone = app.upload(alice, "gone.png", gone_data, share="false")["file"]["id"]
        kept = app.upload(alice, "kept.txt", kept_data, share="false")["file"]["id"]
        other = app.upload(alice, "other.txt", other_data, share="false")["file"]["id"]
        [thumb] = job_rows(app, "thumbnail", file_id=gone)
        assert run(app, thumb.id) == "made"
        ended = app.share(alice, [gone, kept], delete_files_when_done=True)
        still_open = app.share(alice, [kept])
        plain = app.share(alice, [other])
        past = sa.func.now() - timedelta(days=1)
        sql(app, sa.update(shares).where(shares.c.id.in_([ended["id"], plain["id"]])).values(expires_at=past))
        keys = {r.id: (r.storage_key, r.thumbnail_key) for r in sql(app, sa.select(files))}
        gone_paths = [objects / keys[gone][0], objects / f"thumbnails/{gone}.webp"]
        assert keys[gone][1] == f"thumbnails/{gone}.webp" and all(p.is_file() for p in gone_paths)
        total = len(gone_data) + len(kept_data) + len(other_data)

        def used() -> int:
            [(value,)] = sql(app, sa.select(users.c.used_bytes).where(users.c.id == alice.id))
            return int(value)

        def unswept() -> set[int]:
            return {r.id for r in sql(app, sa.select(shares.c.id).where(shares.c.swept_at.is_(None)))}

        dry = app.call(functools.partial(app.services.expiry.purge_expired, dry_run=True))
        assert sorted(dry.shares) == sorted([ended["id"], plain["id"]])
        assert dry.files == [gone] and dry.freed_bytes == len(gone_data)
        assert unswept() == {ended["id"], still_open["id"], plain["id"]}, "a dry run marks nothing"
        assert {r.id for r in sql(app, sa.select(files))} == {gone, kept, other}
        assert all(p.is_file() for p in gone_paths) and used() == total

        report = app.call(app.services.expiry.purge_expired)
        assert (sorted(report.shares), report.files, report.freed_bytes) == (sorted(dry.shares), [gone], len(gone_data))
        assert unswept() == {still_open["id"]}, "the ended ones are history now (their records stay a while)"
        assert {r.id for r in sql(app, sa.select(files))} == {kept, other}, "kept: still shared, or not asked"
        assert not any(p.exists() for p in gone_paths), "the bytes and the thumbnail are gone"
        assert (objects / keys[kept][0]).is_file() and (objects / keys[other][0]).is_file()
        assert used() == total - len(gone_data)
        assert app.client.get(_path(still_open["url"]) + "/download").content == kept_data

        again = app.call(app.services.expiry.purge_expired)
        assert (again.shares, again.files, again.freed_bytes) == ([], [], 0)


def test_a_dry_run_reports_every_ended_share_beyond_one_batch(make_app: AppFactory, own_database: str) -> None:
    with make_app(DATABASE_URL=own_database) as app:
        alice = app.account()
        count = 201
        sql(
            app,
            sa.text(
                "INSERT INTO shares (token, owner_id, expires_at) "
                "SELECT 'expired-' || n, :owner, now() - interval '1 day' FROM generate_series(1, :count) AS n"
            ).bindparams(owner=alice.id, count=count),
        )
        dry = app.call(functools.partial(app.services.expiry.purge_expired, dry_run=True))
        real = app.call(app.services.expiry.purge_expired)
        assert len(real.shares) == count
        assert len(dry.shares) == count


# --- the runner's lock ----------------------------------------------------------------------------------


def test_jobs_run_on_pooled_services_leave_no_lock_behind(app: App) -> None:
    """What a worker process does since it keeps one pooled runtime (``worker.tasks._runtime``)."""
    job_ids = [enqueue(app, "ping", {"delay": 0}) for _ in range(3)]
    for job_id in job_ids:
        assert app.call(run_job, app.services, job_id) == "pong"
    held = []
    with psycopg.connect(app.services.settings.database_url, autocommit=True) as other:
        for job_id in job_ids:
            [(free,)] = other.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(job_id),)).fetchall()
            if free:
                other.execute("SELECT pg_advisory_unlock(%s)", (lock_key(job_id),))
            else:
                held.append(job_id)
    assert held == [], "each job's lock outlived its run, held by an idle pooled connection"
    assert [app.call(run_job, app.services, job_id) for job_id in job_ids] == ["skipped"] * 3
