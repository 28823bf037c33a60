"""Nothing lost, nothing 500: PostgreSQL and Redis die under load, and Satchel answers 503 until they return.

A real ``satchel web`` (two worker processes) runs on a PostgreSQL and a Redis that this
test owns. Several threads keep up a mixed load while the test crashes PostgreSQL, brings
it back on the same port, then does the same to Redis. Every response is recorded and
judged as a user or an operator would: no 500, no refused connection, every 503 a
problem with Retry-After, and service again within seconds of each server's return.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import structlog
from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from satchel.adapters.db.migrate import migrate
from satchel.adapters.redis import Redis, RedisRateLimiter, RedisSessionStore
from satchel.ports.health import ServiceUnavailable
from satchel.runtime.embedded import EmbeddedPostgres, EmbeddedRedis
from satchel.web.sessions import COOKIE, SessionMiddleware, session_of

from support.processes import SatchelProcess, create_account, run_satchel, running_web

EMAIL = "chaos@example.test"
PASSWORD = "correct horse battery staple"
RECOVERY = 5.0  # seconds from a server's return to Satchel serving again, without a restart
DOWN_FOR = 4.0

NEEDS_DATABASE = {"api.list_files", "api.upload", "api.get_share", "share.page", "share.download", "page.files"}
NEEDS_REDIS = {"page.files"}  # the session; uploads count against a limit that fails open instead


@dataclass
class Servers:
    postgres: EmbeddedPostgres
    redis: EmbeddedRedis


@pytest.fixture
def servers() -> Iterator[Servers]:
    """A PostgreSQL and a Redis of this test alone, with data folders of their own: it kills them."""
    path = Path(tempfile.mkdtemp(prefix="satchel-chaos-"))
    owned = Servers(EmbeddedPostgres(path / "postgres", durable=False), EmbeddedRedis(path / "redis", durable=False))
    owned.postgres.start()
    owned.redis.start()
    migrate(owned.postgres.url, "chaos")
    yield owned
    for server in (owned.postgres, owned.redis):
        server.resume()
        server.stop()
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def chaos_env(base_env: dict[str, str], servers: Servers) -> dict[str, str]:
    return {
        **base_env,
        "DATABASE_URL": servers.postgres.url,
        "REDIS_URL": servers.redis.url,
        "WEB_CONCURRENCY": "2",
        "SATCHEL_DATABASE_TIMEOUT": "2",
        "SATCHEL_REDIS_TIMEOUT": "1",
        "SATCHEL_READY_TIMEOUT": "1",
    }


@pytest.fixture
def web(chaos_env: dict[str, str]) -> Iterator[tuple[SatchelProcess, str]]:
    with running_web(chaos_env, ready="/readyz") as started:
        yield started


@dataclass(frozen=True)
class Outcome:
    kind: str
    started: float
    ended: float
    status: int  # 0: the connection failed, or no answer at all
    problem_json: bool = False
    retry_after: bool = False
    detail: str = ""

    @property
    def service(self) -> str | None:
        """The backing service a 503 names."""
        named = re.search(r"backing service \((\w+)\)", self.detail) if self.status == 503 else None
        return named.group(1) if named else None


@dataclass
class Recorder:
    """Every response of the run, and the moments that divide it into phases."""

    outcomes: list[Outcome] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def mark(self, phase: str) -> float:
        now = time.monotonic()
        self.marks.append((now, phase))
        return now

    def phase_of(self, moment: float) -> str:
        current = self.marks[0][1]
        for start, phase in self.marks:
            if moment >= start:
                current = phase
        return current

    def add(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)

    def table(self) -> str:
        phases = list(dict.fromkeys(phase for _, phase in self.marks))
        statuses = sorted({o.status for o in self.outcomes})
        rows = [["phase", "requests", *(str(s) for s in statuses)]]
        for phase in phases:
            counts = Counter(o.status for o in self.outcomes if self.phase_of(o.started) == phase)
            rows.append([phase, str(sum(counts.values())), *(str(counts.get(s, 0)) for s in statuses)])
        total = Counter(o.status for o in self.outcomes)
        rows.append(["all", str(len(self.outcomes)), *(str(total.get(s, 0)) for s in statuses)])
        by_kind = Counter((o.kind, o.status) for o in self.outcomes)
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
        kinds = sorted({o.kind for o in self.outcomes})
        lines.append("by kind: " + "; ".join(
            f"{k} " + " ".join(f"{s}x{by_kind[(k, s)]}" for s in statuses if by_kind[(k, s)]) for k in kinds
        ))  # fmt: skip
        return "\n".join(lines)


@dataclass
class Fixture:
    """What the load works on: an account's token, a browser signed in as it, a share of one file."""

    url: str
    token: str
    cookies: httpx.Cookies
    share_id: int
    share_token: str
    uploaded: list[str] = field(default_factory=list)  # ids of the files the load's uploads were told exist


def sign_in(browser: httpx.Client) -> httpx.Response:
    login = browser.get("/login", headers={"Accept": "text/html"})
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
    assert csrf, login.text[:300]
    return browser.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": csrf.group(1)})


def arrange(url: str, env: dict[str, str]) -> Fixture:
    token = create_account(env, EMAIL, PASSWORD)
    auth = {"Authorization": f"Bearer {token}"}
    stored = httpx.put(f"{url}/api/files/report.txt", content=b"quarterly numbers\n" * 100, headers=auth, timeout=10)
    assert stored.status_code == 201, stored.text
    share = stored.json()["share"]
    with httpx.Client(base_url=url, timeout=10) as browser:
        assert sign_in(browser).status_code == 303
        cookies = httpx.Cookies(browser.cookies)
    return Fixture(url=url, token=token, cookies=cookies, share_id=share["id"], share_token=share["token"])


Request = Callable[[httpx.Client, int], httpx.Response]


def requests_of(fixture: Fixture) -> dict[str, Request]:
    """Each kind of request the load sends; only the signed-in page keeps a cookie."""
    auth = {"Authorization": f"Bearer {fixture.token}"}
    share = f"/s/{fixture.share_token}"

    def upload(client: httpx.Client, n: int) -> httpx.Response:
        response = client.put(f"/api/files/note-{n}.txt", params={"share": "false"}, content=b"note\n", headers=auth)
        if response.status_code == 201:
            fixture.uploaded.append(response.json()["file"]["id"])
        return response

    def files_page(browser: httpx.Client, _: int) -> httpx.Response:
        response = browser.get("/files")
        if response.status_code == 401:  # the session died with Redis's data: sign in again, as a person would
            sign_in(browser)
        return response

    return {
        "api.list_files": lambda c, _: c.get("/api/files", headers=auth),
        "api.get_share": lambda c, _: c.get(f"/api/shares/{fixture.share_id}", headers=auth),
        "api.upload": upload,
        "share.page": lambda c, _: c.get(share),
        "share.download": lambda c, _: c.get(f"{share}/download"),
        "healthz": lambda c, _: c.get("/healthz"),
        "readyz": lambda c, _: c.get("/readyz"),
        "page.files": files_page,
    }


class Load:
    """Threads that each send one kind of request, over and over, recording every outcome."""

    def __init__(self, fixture: Fixture, recorder: Recorder) -> None:
        self.fixture = fixture
        self.recorder = recorder
        self.stopping = threading.Event()
        paces = {"api.upload": 0.6}  # under the 120-a-minute upload limit, which is not what is tested here
        self.threads = [
            threading.Thread(target=self._run, args=(kind, send, paces.get(kind, 0.02)), daemon=True)
            for kind, send in requests_of(fixture).items()
        ]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(30)

    def _run(self, kind: str, send: Request, pace: float) -> None:
        browser = kind.startswith("page.")
        cookies = self.fixture.cookies if browser else None
        with httpx.Client(base_url=self.fixture.url, timeout=15, cookies=cookies) as client:
            n = 0
            while not self.stopping.is_set():
                n += 1
                started = time.monotonic()
                try:
                    response = send(client, n)
                except httpx.HTTPError as exc:
                    self.recorder.add(Outcome(kind, started, time.monotonic(), 0, detail=type(exc).__name__))
                    continue
                finally:
                    if not browser:
                        client.cookies.clear()  # an anonymous visitor, a script: nothing remembered
                self.recorder.add(
                    Outcome(
                        kind, started, time.monotonic(), response.status_code,
                        problem_json=response.headers.get("content-type") == "application/problem+json",
                        retry_after="retry-after" in response.headers,
                        detail=response.text[:200] if response.status_code >= 500 else "",
                    )
                )  # fmt: skip
                self.stopping.wait(pace)


def recovery(outcomes: list[Outcome], service: str, kinds: set[str], back: float, until: float) -> tuple[float, float]:
    """Seconds from a server's return to the first success of a request needing it, and to the last 503 naming it."""
    after = [o for o in outcomes if o.kind in kinds and back <= o.started < until]
    first_success = min((o.ended - back for o in after if 200 <= o.status < 300), default=float("inf"))
    last_503 = max((o.ended - back for o in after if o.status == 503 and o.service == service), default=0.0)
    return first_success, last_503


def test_killing_postgres_then_redis_under_load_gives_503s_never_500s_and_recovers_within_seconds(
    servers: Servers, web: tuple[SatchelProcess, str], chaos_env: dict[str, str]
) -> None:
    process, url = web
    fixture = arrange(url, chaos_env)
    recorder = Recorder()
    recorder.mark("steady")
    with Load(fixture, recorder):
        time.sleep(3)
        postgres_killed = recorder.mark("postgres down")
        servers.postgres.kill()
        time.sleep(DOWN_FOR)
        servers.postgres.start()
        postgres_back = recorder.mark("recovering (postgres)")
        time.sleep(RECOVERY + 2)
        redis_killed = recorder.mark("redis down")
        servers.redis.kill()
        time.sleep(DOWN_FOR)
        servers.redis.start()
        redis_back = recorder.mark("recovering (redis)")
        time.sleep(RECOVERY + 2)
        finished = time.monotonic()
    outcomes = recorder.outcomes
    postgres_recovery = recovery(outcomes, "database", NEEDS_DATABASE, postgres_back, redis_killed)
    redis_recovery = recovery(outcomes, "redis", NEEDS_REDIS, redis_back, finished)
    # Every upload that was answered 201 is there, byte for byte; every other one left nothing behind.
    auth = {"Authorization": f"Bearer {fixture.token}"}
    verified = sum(
        httpx.get(f"{url}/api/files/{file_id}/content", headers=auth, timeout=10).content == b"note\n"
        for file_id in fixture.uploaded
    )
    storage = run_satchel("storage", "verify", "--grace", "0", env=chaos_env, timeout=120)
    print(f"\n{recorder.table()}")
    for name, (first_success, last_503) in (("postgres", postgres_recovery), ("redis", redis_recovery)):
        print(f"{name} back: first success after {first_success:.2f}s, last 503 naming it after {last_503:.2f}s")
    print(f"files verified: {verified} of {len(fixture.uploaded)} answered 201; storage verify: {storage.returncode}")
    assert verified == len(fixture.uploaded) > 0, storage.stdout[-3000:]
    assert storage.returncode == 0, storage.stdout[-2000:] + storage.stderr[-2000:]

    assert not [o for o in outcomes if o.status == 0], "the web process itself must always answer"
    assert not [o for o in outcomes if o.status >= 500 and o.status != 503], "only 503 may say 'not now'"
    for outcome in outcomes:
        if outcome.status == 503 and outcome.kind != "readyz":  # /readyz's 503 is its own report
            assert outcome.problem_json and outcome.retry_after, outcome
    assert all(200 <= o.status < 300 for o in outcomes if o.kind == "healthz"), "liveness never depends on them"

    before = [o for o in outcomes if o.ended < postgres_killed]
    assert before and all(200 <= o.status < 300 for o in before), [o for o in before if o.status >= 300]
    assert any(o.service == "database" for o in outcomes if postgres_killed <= o.started < postgres_back)
    redis_down = [o for o in outcomes if redis_killed <= o.started and o.ended < redis_back]
    assert any(o.service == "redis" for o in redis_down if o.kind in NEEDS_REDIS)
    unaffected = [o for o in redis_down if o.kind not in NEEDS_REDIS | {"readyz"}]
    assert unaffected and all(200 <= o.status < 300 for o in unaffected), "token API and share links need no Redis"

    for name, (first_success, last_503) in (("postgres", postgres_recovery), ("redis", redis_recovery)):
        assert first_success <= RECOVERY, f"{name}: first success {first_success:.2f}s after it returned"
        assert last_503 <= RECOVERY, f"{name}: a web process still failed {last_503:.2f}s after it returned"

    events = process.events_so_far()
    opened = {e["service"] for e in events if e.get("event") == "breaker.opened"}
    closed = {e["service"] for e in events if e.get("event") == "breaker.closed"}
    assert {"database", "redis"} <= opened and {"database", "redis"} <= closed
    assert not [e for e in events if e.get("event") == "http.unhandled_error"]
    assert not any("Traceback" in line for line in process.stderr_lines)


def test_a_paused_postgres_means_a_503_within_the_database_timeout_while_healthz_answers_at_once(
    servers: Servers, web: tuple[SatchelProcess, str], chaos_env: dict[str, str]
) -> None:
    _, url = web
    fixture = arrange(url, chaos_env)
    auth = {"Authorization": f"Bearer {fixture.token}"}
    timeout = float(chaos_env["SATCHEL_DATABASE_TIMEOUT"])
    answers: list[tuple[httpx.Response, float]] = []

    def list_files() -> None:
        started = time.monotonic()
        answers.append((httpx.get(f"{url}/api/files", headers=auth, timeout=30), time.monotonic() - started))

    servers.postgres.pause()
    try:
        waiting = threading.Thread(target=list_files)
        waiting.start()
        time.sleep(0.3)
        started = time.monotonic()
        health = httpx.get(f"{url}/healthz", timeout=5)
        assert health.status_code == 200 and time.monotonic() - started < 0.5, "liveness does not wait on the database"
        waiting.join(30)
        ((response, took),) = answers
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json" and "retry-after" in response.headers
        assert "database" in response.json()["detail"]
        assert took < timeout + 1.0, f"503 after {took:.2f}s, against a {timeout:g}s timeout"
    finally:
        servers.postgres.resume()
    resumed = time.monotonic()

    while httpx.get(f"{url}/api/files", headers=auth, timeout=30).status_code != 200:
        assert time.monotonic() - resumed < RECOVERY, "not recovered within 5 s of the server's return"
        time.sleep(0.05)


# --- Redis down: what fails closed, what fails open, and sessions that cannot be saved --------------


def session_app(redis_url: str) -> Starlette:
    """The session middleware on the real Redis store, with a sign-in and a page that mints a CSRF token."""

    async def sign_in(request: HttpRequest) -> Response:
        await session_of(request).rotate(user_id=1)
        return PlainTextResponse("signed in", status_code=303, headers={"Location": "/files"})

    async def page(request: HttpRequest) -> Response:
        return PlainTextResponse(f"a form, token {await session_of(request).csrf_token()}")

    app = Starlette(routes=[Route("/login", sign_in, methods=["POST"]), Route("/page", page)])
    app.state.services = type("Services", (), {"sessions": RedisSessionStore(Redis(redis_url, timeout=1))})()
    app.add_middleware(SessionMiddleware, secure=False, secret=b"chaos-test-secret")
    return app


def test_a_sign_in_whose_session_cannot_be_saved_is_a_503_not_a_500_nor_a_silent_redirect(
    owned_redis: EmbeddedRedis,
) -> None:
    with TestClient(session_app(owned_redis.url), raise_server_exceptions=False) as client:
        owned_redis.kill()
        response = client.post("/login", follow_redirects=False)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json" and "retry-after" in response.headers
    assert "redis" in response.json()["detail"]
    assert COOKIE not in response.headers.get("set-cookie", "")


def test_a_page_whose_session_cannot_be_saved_is_still_served(owned_redis: EmbeddedRedis) -> None:
    with TestClient(session_app(owned_redis.url), raise_server_exceptions=False) as client:
        owned_redis.kill()
        response = client.get("/page")
    assert response.status_code == 200 and response.text.startswith("a form")
    assert COOKIE not in response.headers.get("set-cookie", ""), "nothing was saved, so no cookie points at it"


def test_while_redis_is_down_sign_in_limits_fail_closed_and_upload_limits_fail_open(
    owned_redis: EmbeddedRedis,
) -> None:
    async def scenario() -> None:
        redis = Redis(owned_redis.url, timeout=1)
        try:
            owned_redis.kill()
            with pytest.raises(ServiceUnavailable):
                await RedisRateLimiter(redis).hit("login:someone@example.test:10.0.0.1", limit=10, window=300)
            with structlog.testing.capture_logs() as events:
                wait = await RedisRateLimiter(redis, fail_open=True).hit("upload:7", limit=120, window=60)
            assert wait == 0
            assert [(e["event"], e["rate_limit"]) for e in events] == [("rate_limit.not_counted", "upload")]
        finally:
            await redis.close()

    asyncio.run(scenario())


def test_a_worker_rides_out_a_postgres_restart_and_runs_the_jobs_that_waited(
    chaos_env: dict[str, str], servers: Servers
) -> None:
    env = {**chaos_env, "SATCHEL_SWEEP_INTERVAL": "0", "SATCHEL_JOB_RECOVERY_INTERVAL": "1"}
    worker = SatchelProcess("worker", "--concurrency", "1", env=env)
    try:
        worker.wait_for(lambda: any("ready" in line for line in worker.lines), what="worker ready")
        servers.postgres.kill()
        time.sleep(DOWN_FOR)
        assert worker.process.poll() is None, "a database outage pauses the relay; it does not end the worker"
        servers.postgres.start()
        pinged = run_satchel("jobs", "ping", "--wait", "30", env=env, timeout=60)
        assert pinged.returncode == 0, pinged.stderr
        assert worker.process.poll() is None
        events = {e.get("event") for e in worker.events_so_far()}
        assert "relay.database_unavailable" in events and "relay.died" not in events
    finally:
        worker.stop()
