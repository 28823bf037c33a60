"""Satchel scaled out: two web hosts and two worker hosts behind nginx, sharing one set of backing services.

The test builds a small data centre on one machine, out of Linux network namespaces on a bridge::

    root namespace  10.x.y.1    the client (this test), PostgreSQL, Redis, S3 (moto): the backing services
    lb              10.x.y.11   nginx, round robin over the two web hosts (tests/support/nginx.py)
    web-a, web-b    .12, .13    satchel web     (SATCHEL_INSTANCE names each one in a response header)
    worker-a, -b    .14, .15    satchel worker --queues default,mail (both relay the outbox)

Why any request may land on any host: a web process keeps nothing of its own. Sessions and rate
limits live in Redis, accounts, shares, download counts and the offset of every resumable upload in
PostgreSQL, and the bytes (finished files and staged upload parts alike) in object storage. Work
that outlives a request goes to the outbox in the same transaction, and whichever worker's relay
sees it first publishes it. So a host can be added, or lost, without anyone signing in again or
starting an upload over; the tests below show each of those, through the same nginx an operator runs.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import itertools
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from tusclient.client import TusClient

from satchel.runtime.embedded import EmbeddedPostgres, EmbeddedRedis, free_port

from support import moto as s3
from support.app import PASSWORD
from support.moto import MotoServer
from support.netns import Host, HostProcess, Network, network, require_namespaces
from support.nginx import Nginx, require_nginx, satchel_site

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240), pytest.mark.xdist_group("scale-out")]

WEB_HOSTS = ("web-a", "web-b")
WORKER_HOSTS = ("worker-a", "worker-b")
PORT = 8000  # every host has a network of its own, so every web host listens on the same port
MiB = 1024 * 1024


@dataclass
class Cluster:
    net: Network
    hosts: dict[str, Host]
    env: dict[str, str]
    url: str  # nginx, as the client sees it
    nginx: Nginx
    webs: dict[str, HostProcess]
    workers: dict[str, HostProcess]
    folder: Path
    summary: list[str] = field(default_factory=list)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, trust_env=False, **kwargs)

    def worker_events(self, event: str) -> dict[str, list[dict[str, Any]]]:
        return {name: [e for e in w.events_so_far() if e.get("event") == event] for name, w in self.workers.items()}


# --- the backing services, on the bridge address where every host reaches them ----------------------------


@contextlib.contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """Point file descriptor 2 at ``path`` while processes are started, so what they inherit writes there."""
    saved = os.dup(2)
    with path.open("w") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def start_postgres(folder: Path, net: Network) -> EmbeddedPostgres:
    """PostgreSQL for every host, on the bridge address; it admits the hosts of that network."""
    server = EmbeddedPostgres(folder / "postgres", durable=False, host=net.gateway)
    with _stderr_to(folder / "postgres.log"):  # the server writes its complaints to stderr: not to -s output
        server.start()
    return server


def storage_settings(server: MotoServer, bucket: str) -> dict[str, str]:
    """A new bucket on ``server``, and the settings that store a Satchel's files in it."""
    server.create_bucket(bucket)
    return {
        "STORAGE_URL": f"s3://{bucket}",
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_ACCESS_KEY_ID": s3.ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": s3.SECRET_KEY,
        "AWS_DEFAULT_REGION": s3.REGION,
    }


# --- the cluster ------------------------------------------------------------------------------------------


def _release(env: dict[str, str], host: Host, folder: Path) -> None:
    """``satchel migrate`` once, as a one-off on one host: the release step, before any process of the release."""
    done = subprocess.run(
        host.command(sys.executable, "-m", "satchel", "migrate"),
        env=env, cwd=folder, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def _stop_all(processes: list[HostProcess]) -> None:
    """SIGTERM to all at once (each drains in parallel), then wait; a process that hangs is killed."""
    for process in processes:
        if process.process.poll() is None:
            process.signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


def _summary_table(cluster: Cluster) -> str:
    """Who did what: requests per web host (nginx's access log), jobs per worker host, then each test's line."""
    answered = Counter(re.findall(r"instance=(\S+)", "\n".join(cluster.nginx.access_log())))
    finished = {name: len(events) for name, events in cluster.worker_events("job.finished").items()}
    roles = {"lb": "nginx", **dict.fromkeys(WEB_HOSTS, "satchel web"), **dict.fromkeys(WORKER_HOSTS, "satchel worker")}
    table = [("host", "address", "runs", "requests answered", "jobs finished")]
    table.append(("(root)", cluster.net.gateway, "the client, PostgreSQL, Redis, S3", "", ""))
    for name, host in cluster.hosts.items():
        requests = str(answered[name]) if name in WEB_HOSTS else ""
        jobs = str(finished[name]) if name in WORKER_HOSTS else ""
        table.append((name, host.address, roles[name], requests, jobs))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = [" " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in table]
    lines.insert(1, " " + "-+-".join("-" * width for width in widths))
    return "\n".join(["", f" Satchel scaled out on {cluster.net.subnet}", *lines, "", *cluster.summary])


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    require_namespaces()
    require_nginx()
    folder = Path(tempfile.mkdtemp(prefix="satchel-scale-out-"))
    folder.chmod(0o755)  # PostgreSQL's user and nginx's workers reach their folders through it
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, folder, ignore_errors=True)
        net = stack.enter_context(network("lb", *WEB_HOSTS, *WORKER_HOSTS))  # removed last, after every process
        hosts = {host.name: host for host in net.hosts}

        postgres = start_postgres(folder, net)
        stack.callback(postgres.stop)
        redis = EmbeddedRedis(folder / "redis", durable=False, host=net.gateway)
        redis.start()
        stack.callback(redis.stop)
        storage = MotoServer(free_port(), host=net.gateway)
        storage.start()
        stack.callback(storage.stop)

        # One environment for every process of the release; only SATCHEL_INSTANCE differs from host to host.
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
        env = {
            **keep,
            **storage_settings(storage, f"satchel-{net.run}"),
            "DATABASE_URL": postgres.url,
            "REDIS_URL": redis.url,
            "SECRET_KEY": secrets.token_urlsafe(40),  # the same on every host: a cookie signed on one is good on all
            "RELEASE_ID": f"scale-out-{net.run}",
            "EMAIL_URL": "console://",
            "SATCHEL_SIGNUP": "open",  # visitors sign up through the proxy below
            "FORWARDED_ALLOW_IPS": hosts["lb"].address,  # X-Forwarded-* believed from nginx, and nobody else
            "PORT": str(PORT),
            "WEB_CONCURRENCY": "1",  # the hosts, not the processes per host, are what this test scales
            "GRACEFUL_TIMEOUT": "5",
            "WORKER_GRACE": "5",
            "LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
        }
        _release(env, hosts["web-a"], folder)

        def start(name: str, *args: str) -> HostProcess:
            process = HostProcess(hosts[name], *args, env={**env, "SATCHEL_INSTANCE": name}, cwd=str(folder))
            everything.append(process)
            return process

        everything: list[HostProcess] = []
        stack.callback(_stop_all, everything)
        webs = {name: start(name, "web") for name in WEB_HOSTS}
        workers = {
            name: start(name, "worker", "--queues", "default,mail", "--concurrency", "1") for name in WORKER_HOSTS
        }
        for name, web in webs.items():
            web.wait_http(f"http://{hosts[name].address}:{PORT}/readyz", timeout=60)
        for worker in workers.values():
            worker.wait_for(lambda w=worker: any("ready" in line for line in w.lines), 60, "worker ready")

        site = satchel_site([f"{hosts[name].address}:{PORT}" for name in WEB_HOSTS], listen=f"{hosts['lb'].address}:80")
        nginx = Nginx(folder / "nginx", site, prefix=hosts["lb"].command())
        stack.callback(nginx.stop)
        nginx.start(answers=f"{hosts['lb'].address}:80")

        built = Cluster(net, hosts, env, f"http://{hosts['lb'].address}", nginx, webs, workers, folder)
        yield built
        print(_summary_table(built))  # shown with -s; the rest of the output is captured as usual


# --- an account, made the way a person makes one: through the sign-up form ----------------------------------


@dataclass
class Owner:
    email: str
    browser: httpx.Client  # holds the session cookie
    token: str  # an API token, for the curl-style steps
    signed_up_on: list[str]  # the hosts that served the form and took it

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text) or re.search(
        r'name="csrf-token" content="([^"]+)"', page.text
    )
    assert found, page.text[:300]
    return found.group(1)


@pytest.fixture(scope="module")
def owner(cluster: Cluster) -> Iterator[Owner]:
    """Sign up with the form (GET on one host, POST on the other: nginx takes turns), then make an API
    token from that browser session, which needs its CSRF token: both are read from Redis, not from the host."""
    email = f"owner-{secrets.token_hex(4)}@example.test"
    with cluster.client() as browser:
        form = browser.get("/signup")
        signup = browser.post("/signup", data={"email": email, "password": PASSWORD, "csrf_token": _csrf(form)})
        assert signup.status_code == 303 and signup.headers["location"] == "/files", signup.text[:300]
        files_page = browser.get("/files")
        assert files_page.status_code == 200 and email in files_page.text
        made = browser.post("/api/tokens", json={"name": "curl"}, headers={"X-CSRF-Token": _csrf(files_page)})
        assert made.status_code == 201, made.text
        hosts = [r.headers["Satchel-Instance"] for r in (form, signup)]
        yield Owner(email, browser, made.json()["token"], hosts)


# --- the tests --------------------------------------------------------------------------------------------


def test_nginx_hands_consecutive_requests_to_the_two_web_hosts_in_turn(cluster: Cluster) -> None:
    """Every answer names its host (Satchel-Instance): nginx's round robin alternates, one release on both."""
    with cluster.client() as client:
        answers = [client.get("/healthz") for _ in range(8)]
    hosts = [a.headers["Satchel-Instance"] for a in answers]
    assert set(hosts) == set(WEB_HOSTS), hosts
    assert all(one != other for one, other in itertools.pairwise(hosts)), f"not alternating: {hosts}"
    assert {a.json()["release"] for a in answers} == {cluster.env["RELEASE_ID"]}, "one release on every host"
    cluster.summary.append(f" round robin: {' '.join(h[-1] for h in hosts)}")


def test_a_session_started_on_one_host_holds_on_the_other(cluster: Cluster, owner: Owner) -> None:
    """The session cookie holds only a random id; the session (and its CSRF token) lives in Redis, and every
    host signs with the same SECRET_KEY. No sticky sessions needed: nobody is signed out by the next request."""
    assert sorted(owner.signed_up_on) == sorted(WEB_HOSTS), "the sign-up form and its POST met different hosts"
    pages = [owner.browser.get("/files") for _ in range(4)]
    assert [p.status_code for p in pages] == [200] * 4, "signed in on every host, never sent to /login"
    assert {p.headers["Satchel-Instance"] for p in pages} == set(WEB_HOSTS)

    with cluster.client() as second_browser:  # signing in works the same: the form and its POST on two hosts
        form = second_browser.get("/login")
        login = second_browser.post(
            "/login", data={"email": owner.email, "password": PASSWORD, "csrf_token": _csrf(form)}
        )
        assert login.status_code == 303, login.text[:300]
        assert form.headers["Satchel-Instance"] != login.headers["Satchel-Instance"]
        assert {second_browser.get("/api/me").headers["Satchel-Instance"] for _ in range(2)} == set(WEB_HOSTS)
        assert second_browser.get("/api/me").json()["email"] == owner.email

    cluster.summary.append(f" sign-up form served by {owner.signed_up_on[0]}, taken by {owner.signed_up_on[1]}")


def _logged_client(cluster: Cluster, request_id: str) -> str:
    """The client address a web host logged for the request with ``request_id`` (its line may come a moment late)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for web in cluster.webs.values():
            for event in web.events_so_far():
                if event.get("event") == "http.request" and event.get("request_id") == request_id:
                    return str(event["client"])
        time.sleep(0.05)
    raise AssertionError(f"no web host logged request {request_id}")


def test_web_hosts_believe_x_forwarded_for_from_nginx_alone(cluster: Cluster) -> None:
    """Rate limits and logs key on the client's address. Behind nginx every connection comes from nginx,
    so the hosts take the address from X-Forwarded-For, but only when nginx (FORWARDED_ALLOW_IPS) sent it."""
    forged = {"X-Forwarded-For": "203.0.113.9"}
    with cluster.client() as client:
        client.get("/healthz", headers={**forged, "X-Request-ID": "via-nginx"})
    with httpx.Client(trust_env=False) as direct:  # around nginx, straight to a web host
        direct.get(
            f"http://{cluster.hosts['web-a'].address}:{PORT}/healthz", headers={**forged, "X-Request-ID": "direct"}
        )
    # Through nginx: the address nginx saw and appended, not the one the client wrote before it.
    assert _logged_client(cluster, "via-nginx") == cluster.net.gateway
    # Straight to the host: the header is not believed at all; the connection's own address counts.
    assert _logged_client(cluster, "direct") == cluster.net.gateway


@dataclass
class Uploaded:
    file_id: str
    data: bytes


@pytest.fixture(scope="module")
def uploads(cluster: Cluster, owner: Owner) -> dict[str, Uploaded]:
    """A file sent by tus in parts that alternate between the hosts, and one sent as ``curl -T`` sends it."""
    data = os.urandom(5 * MiB)
    source = cluster.folder / "photos.tar"
    source.write_bytes(data)
    tus = TusClient(f"{cluster.url}/api/uploads/", headers=owner.auth)
    uploader = tus.uploader(str(source), chunk_size=2 * MiB, metadata={"filename": "photos.tar"})
    parts_on = []
    while uploader.offset < len(data):
        uploader.upload_chunk()
        parts_on.append(uploader.request.response_headers["satchel-instance"])
    assert set(parts_on) == set(WEB_HOSTS), f"the parts should meet both hosts: {parts_on}"
    tus_id = uploader.request.response_headers["satchel-file-id"]

    report = os.urandom(MiB + 17)
    with cluster.client() as curl:  # curl -T report.pdf -H 'Authorization: Bearer …' https://…/api/files/
        put = curl.put("/api/files/report.pdf", content=report, headers=owner.auth, params={"share": "false"})
    assert put.status_code == 201, put.text
    cluster.summary.append(f" tus upload: {len(parts_on)} parts, on {' '.join(parts_on)}")
    return {"tus": Uploaded(tus_id, data), "put": Uploaded(put.json()["file"]["id"], report)}


def test_files_uploaded_through_either_host_are_stored_once_for_all(
    cluster: Cluster, owner: Owner, uploads: dict[str, Uploaded]
) -> None:
    """Both hosts read the same bytes from object storage: no host has a copy of its own to lose."""
    with cluster.client(headers=owner.auth) as client:
        for how, upload in uploads.items():
            seen = {}
            for _ in range(2):  # the same file, read through each host in turn
                content = client.get(f"/api/files/{upload.file_id}/content")
                assert content.status_code == 200, (how, content.text[:200])
                seen[content.headers["Satchel-Instance"]] = hashlib.sha256(content.content).hexdigest()
            expected = hashlib.sha256(upload.data).hexdigest()
            assert seen == dict.fromkeys(WEB_HOSTS, expected), how
            assert client.get(f"/api/files/{upload.file_id}").json()["sha256"] == expected


@dataclass
class LimitedShare:
    id: int
    token: str
    recipient: str


@pytest.fixture(scope="module")
def limited_share(cluster: Cluster, owner: Owner, uploads: dict[str, Uploaded]) -> LimitedShare:
    """A link good for three downloads, mailed to a friend: the invitation is a job for a worker."""
    recipient = f"friend-{secrets.token_hex(3)}@example.test"
    terms = {"file_ids": [uploads["put"].file_id], "max_downloads": 3, "notify": [recipient]}
    with cluster.client(headers=owner.auth) as client:
        made = client.post("/api/shares", json=terms)
    assert made.status_code == 201, made.text
    share = made.json()
    # The link names nginx's address: the web host built it from the Host header nginx passed on.
    assert share["url"] == f"{cluster.url}/s/{share['token']}"
    # The friend reads the mail before anyone downloads: an invitation to a link already used up is not sent.
    _wait_for_mail(cluster, recipient, "invitation")
    return LimitedShare(share["id"], share["token"], recipient)


def test_a_download_limit_holds_across_hosts(
    cluster: Cluster, owner: Owner, uploads: dict[str, Uploaded], limited_share: LimitedShare
) -> None:
    """Twelve people download a three-download link at once, through both hosts: exactly three get it."""

    def download(_: int) -> httpx.Response:
        with cluster.client() as stranger:
            return stranger.get(f"/s/{limited_share.token}/download")

    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(download, range(12)))
    codes = Counter(a.status_code for a in answers)
    assert codes == {200: 3, 410: 9}, codes
    assert all(a.content == uploads["put"].data for a in answers if a.status_code == 200)
    by_host = Counter(a.headers["Satchel-Instance"] for a in answers)
    granted = Counter(a.headers["Satchel-Instance"] for a in answers if a.status_code == 200)
    assert set(by_host) == set(WEB_HOSTS), by_host

    with cluster.client(headers=owner.auth) as client:
        share = client.get(f"/api/shares/{limited_share.id}").json()
    assert (share["download_count"], share["remaining_downloads"]) == (3, 0)
    cluster.summary.append(
        f" 12 parallel downloads of a 3-download link: {codes[200]} granted "
        f"({', '.join(f'{h} {n}' for h, n in sorted(granted.items()))}), {codes[410]} refused (410); "
        f"answered by {', '.join(f'{h} {n}' for h, n in sorted(by_host.items()))}"
    )


def _mails(cluster: Cluster, recipient: str) -> dict[str, int]:
    sent = cluster.worker_events("mail.console")
    return {name: sum(e.get("to") == [recipient] for e in events) for name, events in sent.items()}


def _outbox(cluster: Cluster) -> str:
    """The jobs table and the workers' job events, for a failure message."""
    with psycopg.connect(cluster.env["DATABASE_URL"]) as conn:
        rows = conn.execute(
            "SELECT kind, queue, payload->>'notice', status, attempts, last_error FROM jobs ORDER BY created_at"
        ).fetchall()
    events = {
        name: [
            (e["event"], e.get("kind"), e.get("outcome")) for e in w.events_so_far() if e["event"].startswith("job.")
        ]
        for name, w in cluster.workers.items()
    }
    return f"outbox: {rows}\nworker job events: {events}"


def _wait_for_mail(cluster: Cluster, recipient: str, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not sum(_mails(cluster, recipient).values()):
        assert time.monotonic() < deadline, f"no worker sent the {what} mail within {timeout:g}s\n{_outbox(cluster)}"
        time.sleep(0.1)


def test_jobs_from_a_web_host_run_once_on_a_worker_host(
    cluster: Cluster, owner: Owner, limited_share: LimitedShare
) -> None:
    """The share's invitation and its first-download notice were queued by web hosts in the outbox, in the
    transaction that made the share or counted the download; a worker's relay published each, and one of
    the two workers sent it, once."""
    with cluster.client(headers=owner.auth) as client:
        if client.get(f"/api/shares/{limited_share.id}").json()["download_count"] == 0:  # run on its own
            assert client.get(f"/s/{limited_share.token}/download").status_code == 200
    _wait_for_mail(cluster, owner.email, "first download")
    with psycopg.connect(cluster.env["DATABASE_URL"]) as conn:  # each mail job: done, and run once
        mail_jobs = conn.execute("SELECT status, attempts FROM jobs WHERE queue = 'mail'").fetchall()
    assert mail_jobs and all(row == ("done", 1) for row in mail_jobs), _outbox(cluster)
    for to, what in {limited_share.recipient: "invitation", owner.email: "first download"}.items():
        sent = _mails(cluster, to)
        assert sum(sent.values()) == 1, f"the {what} mail was sent {sent}\n{_outbox(cluster)}"
        (worker,) = [name for name, count in sent.items() if count]
        cluster.summary.append(f" the {what} mail (a job from the outbox) ran on {worker}")


_PASSED_ON = re.compile(r'" (?P<status>\d{3}) upstream=(?P<tried>.*?) upstream_status=')


def test_a_tus_upload_continues_on_the_other_host_after_one_is_killed(cluster: Cluster, owner: Owner) -> None:
    """A host dies (SIGKILL, no goodbye) between two parts of an upload. The parts it had acknowledged are in
    object storage and its offset in PostgreSQL, so the survivor takes the next part where the dead one left
    off; nginx, refused by the dead host, passes the request on. Runs last: it leaves one web host dead."""
    data = os.urandom(24 * MiB)
    source = cluster.folder / "holiday.mp4"
    source.write_bytes(data)
    tus = TusClient(f"{cluster.url}/api/uploads/", headers=owner.auth)
    uploader = tus.uploader(
        str(source), chunk_size=8 * MiB, retries=3, retry_delay=1, metadata={"filename": "holiday.mp4"}
    )
    uploader.upload_chunk()  # creates the upload and sends its first 8 MiB
    took = uploader.request.response_headers["satchel-instance"]
    (survivor,) = set(WEB_HOSTS) - {took}
    seen_before = len(cluster.nginx.access_log())

    cluster.webs[took].kill()
    parts_on = []
    while uploader.offset < len(data):
        uploader.upload_chunk()
        parts_on.append(uploader.request.response_headers["satchel-instance"])

    assert parts_on and set(parts_on) == {survivor}, parts_on
    file_id = uploader.request.response_headers["satchel-file-id"]
    with cluster.client(headers=owner.auth) as client:
        stored = client.get(f"/api/files/{file_id}").json()
        content = client.get(f"/api/files/{file_id}/content")
    expected = hashlib.sha256(data).hexdigest()
    assert (stored["size"], stored["sha256"]) == (len(data), expected)
    assert hashlib.sha256(content.content).hexdigest() == expected

    after = [m for line in cluster.nginx.access_log()[seen_before:] if (m := _PASSED_ON.search(line))]
    assert not [m.group(0) for m in after if m.group("status") == "502"], "nginx passed every request on"
    passed_on = [m for m in after if "," in m.group("tried")]
    assert passed_on, "the dead host was tried, refused the connection, and nginx sent the request on"
    cluster.summary.append(
        f" killed {took} after 8 of 24 MiB of a tus upload; {survivor} took the other {len(parts_on)} parts, "
        f"sha256 equal; nginx passed {len(passed_on)} request(s) on ({passed_on[0].group('tried')})"
    )
