"""The API description is the API: a fuzzer that reads only /openapi.json finds nothing a real ``satchel web``
does differently.

Schemathesis generates well over a thousand requests from the document (valid ones, and deliberately invalid
ones) and checks every answer against it with all its checks: no 5xx, only documented statuses, content types
and headers, bodies that match their schemas, valid data accepted and invalid data refused, 405 with a true
``Allow`` for undocumented methods, credentials enforced, a deleted thing gone, and one account never reading
another's objects. Ids made up front (files, shares, links, resumable uploads, tokens, accounts, invitations)
are handed to it as dictionaries, so it reaches past "no such file"; an upload link's resumable uploads come with
their link. The run is seeded: a failure replays the same way. The fuzzing account is an administrator, so
/api/admin is answered too; the second account is not, and must stay so: the fuzzer changes only a third account
of its own (Carol), never Bob.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from test_web_process import _mailed_tokens

from satchel.runtime.embedded import EmbeddedRedis

from support.processes import SatchelProcess, create_account, run_satchel, running_web

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]

SEED = 20261125
MAX_EXAMPLES = 40  # per operation and phase: about 2,000 requests in all
PASSWORD = "correct horse battery staple"
SHARE_PASSWORD = "open sesame 42"
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@dataclass
class World:
    """What exists before the fuzzer starts: two accounts, and ids it could never guess."""

    url: str
    emails: dict[str, str]
    tokens: dict[str, str]
    files: list[str] = field(default_factory=list)
    shares: list[int] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)  # upload links by id (their QR codes, their pages)
    uploads: list[str] = field(default_factory=list)
    upload_link: str = ""  # an upload link with resumable uploads of its own: they are reached only through it
    link_uploads: list[str] = field(default_factory=list)
    token_ids: list[int] = field(default_factory=list)
    reset_links: list[str] = field(default_factory=list)  # tokens of password reset links, for dave's account
    carol: int = 0  # an account only for the fuzzer to change: disabled, made admin, given quotas
    users: list[int] = field(default_factory=list)
    invitations: list[int] = field(default_factory=list)
    # What /api/admin deletes, revokes and retries: Carol's file and link and a failed job, never the world's
    # above (deleted as an administrator, Alice's files would leave every later file operation a 404).
    carols_file: str = ""
    carols_share: int = 0
    failed_job: str = ""

    def client(self, who: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.tokens[who]}"}, timeout=30)


class TokenDesk:
    """Hands out a fresh API token for an account, as an operator would (``satchel tokens create``).

    The fuzzer comes back here whenever the API answers 401: it may have revoked its own token
    (``DELETE /api/tokens/{id}``) or changed its password, which revokes every token of the account.
    """

    def __init__(self, env: dict[str, str], emails: dict[str, str]) -> None:
        self.issued: Counter[str] = Counter()
        desk = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                who = self.path.strip("/")
                created = run_satchel("tokens", "create", emails[who], env=env)
                assert created.returncode == 0, created.stderr
                desk.issued[who] += 1
                body = json.dumps({"token": created.stdout.strip()}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, who: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{who}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def base_env(base_env: dict[str, str], owned_redis: EmbeddedRedis) -> dict[str, str]:
    """The suite's environment with a Redis of the fuzzer's own: a fuzzer trips every rate limit on purpose,
    and counters it left in the suite's Redis would refuse the tests after it (a reset link asked for from
    127.0.0.1, say) for the rest of the limit's hour."""
    return {**base_env, "REDIS_URL": owned_redis.url}


@pytest.fixture
def web(base_env: dict[str, str]) -> Iterator[tuple[SatchelProcess, str]]:
    with running_web(base_env, ready="/readyz") as (process, url):
        yield process, url


@pytest.fixture
def world(web: tuple[SatchelProcess, str], base_env: dict[str, str]) -> World:
    _, url = web
    emails = {who: f"fuzz-{who}-{uuid.uuid4().hex[:8]}@example.com" for who in ("alice", "bob")}
    tokens = {who: create_account(base_env, email, PASSWORD, admin=who == "alice") for who, email in emails.items()}
    world = World(url, emails, tokens)
    carol = f"fuzz-carol-{uuid.uuid4().hex[:8]}@example.com"
    carols = {"Authorization": f"Bearer {create_account(base_env, carol, PASSWORD)}"}
    put = httpx.put(f"{url}/api/files/carols-notes.txt", content=b"carol's\n", headers=carols)
    assert put.status_code == 201, put.text
    world.carols_file, world.carols_share = put.json()["file"]["id"], put.json()["share"]["id"]
    world.failed_job = _failed_job(base_env)
    with world.client("alice") as alice:
        [found] = alice.get("/api/admin/users", params={"q": carol}).json()["items"]
        world.carol = found["id"]
        world.users = [world.carol, alice.get("/api/me").json()["id"]]  # her own: refused what would lock her out
        for number in range(4):
            invited = alice.post("/api/admin/invitations", json={"email": f"fuzz-invited-{number}-{carol}"})
            assert invited.status_code == 201, invited.text
            world.invitations.append(invited.json()["id"])
        for number in range(4):
            put = alice.put(
                f"/api/files/notes-{number}.txt", content=f"note {number}\n".encode(), params={"share": "false"}
            )
            assert put.status_code == 201, put.text
            world.files.append(put.json()["file"]["id"])
        for terms in (
            {"file_ids": world.files[:2]},
            {"file_ids": world.files[1:3], "password": SHARE_PASSWORD},
            {"file_ids": world.files[3:], "max_downloads": 1},
            {"file_ids": world.files[2:], "max_downloads": 1000, "allow_previews": True},  # text files: previews
        ):
            share = alice.post("/api/shares", json=terms)
            assert share.status_code == 201, share.text
            world.shares.append(share.json()["id"])
            world.links.append(share.json()["token"])
        snippet = alice.post("/api/snippets", content=b"a pasted note\n", headers={"Content-Type": "text/plain"})
        assert snippet.status_code == 201, snippet.text
        world.files.append(snippet.json()["file"]["id"])
        world.links.append(snippet.json()["share"]["token"])
        for terms in ({"max_files": 50}, {"max_bytes": 100_000}):  # upload links, reached through path.token too
            asked = alice.post("/api/requests", json=terms)
            assert asked.status_code == 201, asked.text
            world.links.append(asked.json()["token"])
            world.requests.append(asked.json()["id"])
        tus = {"Tus-Resumable": "1.0.0", "Upload-Length": "100", "Upload-Metadata": _metadata("draft.bin")}
        for _ in range(2):
            created = alice.post("/api/uploads/", headers=tus)
            assert created.status_code == 201, created.text
            world.uploads.append(created.headers["Location"].rsplit("/", 1)[-1])
        asked = alice.post("/api/requests", json={"max_files": 1000})
        assert asked.status_code == 201, asked.text
        world.upload_link = asked.json()["token"]
        world.links.append(world.upload_link)
        for _ in range(4):  # by someone without an account, as the link's own uploaders do
            created = httpx.post(f"{url}/r/{world.upload_link}/uploads/", headers=tus)
            assert created.status_code == 201, created.text
            world.link_uploads.append(created.headers["Location"].rsplit("/", 1)[-1])
        for name in ("laptop", "backup job"):
            token = alice.post("/api/tokens", json={"name": name})
            assert token.status_code == 201, token.text
            world.token_ids.append(token.json()["id"])
    with world.client("bob") as bob:  # the other account: its objects must stay out of alice's reach
        put = bob.put("/api/files/bobs-notes.txt", content=b"bob's\n")
        assert put.status_code == 201, put.text
    world.reset_links = _reset_links(url, base_env)
    return world


def _reset_links(url: str, env: dict[str, str]) -> list[str]:
    """Password reset links to an account of their own (dave's: resetting it revokes no token the fuzzer uses),
    made as the worker makes them; and the per-client count of asks starts afresh, so the fuzzer's own asks
    are answered 202 before the limit answers 429."""
    dave = f"fuzz-dave-{uuid.uuid4().hex[:8]}@example.com"
    create_account(env, dave, PASSWORD)
    limits = redis.Redis.from_url(env["REDIS_URL"])
    for _ in range(3):
        assert httpx.post(f"{url}/api/password-resets", json={"email": dave}).status_code == 202
    links = asyncio.run(_mailed_tokens(env, dave))
    for key in limits.scan_iter(match="satchel:rate:reset:*"):
        limits.delete(key)
    return links


def _failed_job(env: dict[str, str]) -> str:
    """A job parked after its last attempt, as a mail server that kept refusing leaves one: for the retry route."""
    job_id = uuid.uuid4().hex
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        conn.execute(
            "INSERT INTO jobs (id, kind, queue, payload, status, attempts, max_attempts, last_error, finished_at) "
            "VALUES (%s, 'ping', 'default', '{}', 'failed', 5, 5, 'fuzz: gave up', now())",
            [job_id],
        )
    return job_id


def _metadata(filename: str) -> str:
    encoded = base64.b64encode(filename.encode()).decode()
    return f"filename {encoded},filetype {base64.b64encode(b'application/octet-stream').decode()}"


def _toml(values: list[Any]) -> str:
    return json.dumps(values)  # a JSON array of strings and numbers is a TOML array


def _config(world: World, desk: TokenDesk, hooks: Path, wfc: Path) -> str:
    wfc.write_text(
        json.dumps(
            {
                "auth": [
                    {
                        "name": who,
                        "loginEndpointAuth": {
                            "externalEndpointURL": desk.url(who),
                            "verb": "POST",
                            "token": {
                                "extractFrom": "body",
                                "extractSelector": "/token",
                                "sendIn": "header",
                                "sendName": "Authorization",
                                "sendTemplate": "Bearer {token}",
                            },
                        },
                    }
                    for who in world.emails
                ]
            }
        )
    )
    return f"""
hooks = {json.dumps(str(hooks))}
seed = {SEED}
workers = 1

[generation]
max-examples = {MAX_EXAMPLES}
database = "none"

# Alice fuzzes; Bob is the second account that object_level_authorization replays Alice's reads as.
# Tokens come from the token desk, and again after any 401 (see TokenDesk).
[auth.wfc]
path = {json.dumps(str(wfc))}
user = "alice"
peers = ["alice", "bob"]

# tus 1.0 answers a missing or other Tus-Resumable with 412 Precondition Failed, and HTTP refuses a size
# beyond the documented maximum with 413 Content Too Large: both are refusals of invalid data. 410 is the
# state of the thing asked for (see below), answered before the request's shape is looked at.
[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 410, 412, 413, 415, 422, 428, 429, "5XX"]
[checks.missing_required_header]
expected-statuses = [400, 401, 403, 406, 412, 415, 422]

# 410 is the state of the thing asked for, not of the request: a link that expired, was revoked or used
# its downloads up, an upload abandoned. No request can be shaped to avoid it.
[checks.positive_data_acceptance]
expected-statuses = ["2XX", "3XX", 401, 403, 404, 409, 410, 429, "5XX"]

# Ids the fuzzer could never guess, drawn half of the time.
[dictionaries.files]
values = {_toml(world.files)}
[dictionaries.shares]
values = {_toml(world.shares)}
[dictionaries.links]
values = {_toml(world.links)}
[dictionaries.requests]
values = {_toml(world.requests)}
[dictionaries.uploads]
values = {_toml(world.uploads)}
[dictionaries.upload-link]
values = {_toml([world.upload_link])}
[dictionaries.link-uploads]
values = {_toml(world.link_uploads)}
[dictionaries.tokens]
values = {_toml(world.token_ids)}
[dictionaries.users]
values = {_toml(world.users)}
[dictionaries.invitations]
values = {_toml(world.invitations)}
[dictionaries.reset-links]
values = {_toml(world.reset_links)}
[dictionaries.share-passwords]
values = {_toml([SHARE_PASSWORD])}
[dictionaries.passwords]
values = {_toml([PASSWORD])}
[dictionaries.metadata]
values = {_toml([_metadata("fuzzed.bin")])}

[parameters]
"path.file_id" = {{ dictionary = "files", probability = 0.5 }}
"body.file_ids[*]" = {{ dictionary = "files", probability = 0.5 }}
"path.share_id" = {{ dictionary = "shares", probability = 0.5 }}
"path.token" = {{ dictionary = "links", probability = 0.5 }}
"path.request_id" = {{ dictionary = "requests", probability = 0.5 }}
"header.X-Share-Password" = {{ dictionary = "share-passwords", probability = 0.5 }}
"path.upload_id" = {{ dictionary = "uploads", probability = 0.5 }}
"header.Upload-Metadata" = {{ dictionary = "metadata", probability = 0.5 }}
"path.token_id" = {{ dictionary = "tokens", probability = 0.5 }}
"path.user_id" = {{ dictionary = "users", probability = 0.5 }}
"path.invitation_id" = {{ dictionary = "invitations", probability = 0.5 }}
"body.current_password" = {{ dictionary = "passwords", probability = 0.2 }}

# Each rule below picks operations by name: a path and a method given apart would pick every operation
# with either one, loosening the checks of operations nobody meant to.

# Starting a resumable upload: the file name travels base64-encoded inside Upload-Metadata, which no JSON
# Schema can check (422); the first bytes may run past Upload-Length (413) or not match Upload-Checksum
# (460) - relations between parts of one request that a schema cannot state.
[[operations]]
include-name = "POST /api/uploads/"
checks.positive_data_acceptance.expected-statuses = ["2XX", "3XX", 401, 403, 404, 409, 410, 413, 422, 429, 460, "5XX"]

# Continuing one: its bytes may run past what is left of the upload's length (413, the upload's state) or
# not match Upload-Checksum (460, a relation within the request).
[[operations]]
include-name = "PATCH /api/uploads/{{upload_id}}"
checks.positive_data_acceptance.expected-statuses = ["2XX", "3XX", 401, 403, 404, 409, 410, 413, 429, 460, "5XX"]

# A password reset link's token is no share's: drawn from the links mailed to dave. Asking for links is
# limited per client, so the fuzzer's asks end in 429 (by design: the form mails nobody in bulk).
[[operations]]
include-name = "POST /api/password-resets/{{token}}"
parameters."path.token" = {{ dictionary = "reset-links", probability = 0.7 }}

# Uploading through an upload link: what the link still takes is its state, not the request's shape (413).
[[operations]]
include-name = "PUT /r/{{token}}/files/{{file_id}}"
checks.positive_data_acceptance.expected-statuses = ["2XX", "3XX", 401, 403, 404, 409, 410, 413, 429, "5XX"]

# Resumable uploads through an upload link: as /api/uploads/ (a name inside Upload-Metadata, bytes past the
# length or not matching their checksum), plus what the link still takes (413). An upload is reached only
# through the link it started on, so its id comes with that link's token.
[[operations]]
include-name = "POST /r/{{token}}/uploads/"
parameters."path.token" = {{ dictionary = "upload-link", probability = 0.5 }}
checks.positive_data_acceptance.expected-statuses = ["2XX", "3XX", 401, 403, 404, 409, 410, 413, 422, 429, 460, "5XX"]

[[operations]]
include-name = "PATCH /r/{{token}}/uploads/{{upload_id}}"
parameters."path.token" = {{ dictionary = "upload-link", probability = 0.7 }}
parameters."path.upload_id" = {{ dictionary = "link-uploads", probability = 0.7 }}
checks.positive_data_acceptance.expected-statuses = ["2XX", "3XX", 401, 403, 404, 409, 410, 413, 429, 460, "5XX"]

[[operations]]
include-name-regex = "^(HEAD|DELETE) /r/[{{]token[}}]/uploads/[{{]upload_id[}}]$"
parameters."path.token" = {{ dictionary = "upload-link", probability = 0.7 }}
parameters."path.upload_id" = {{ dictionary = "link-uploads", probability = 0.7 }}

# Changing an account is only ever Carol's: a change the fuzzer made to Bob (an administrator's rights) would
# turn the second account's refusals into answers. Every other admin route may name anyone.
[[operations]]
include-name = "PATCH /api/admin/users/{{user_id}}"
parameters = {{ "path.user_id" = {world.carol} }}

# DELETE on a share or an upload request ends its link, not its record: the owner still reads it, with
# status "revoked", until the history sweep removes it (docs/api.md, and the integration tests that say so).
# A read after the DELETE answering 200 is that record, not a resource used after it was freed.
[[operations]]
include-name-regex = "^GET /api/(shares/[{{]share_id|requests/[{{]request_id)[}}]$"
checks.use_after_free.enabled = false

# An administrator deletes, revokes and retries only what the world made for it to (see World).
[[operations]]
include-name = "DELETE /api/admin/files/{{file_id}}"
parameters = {{ "path.file_id" = "{world.carols_file}" }}
[[operations]]
include-name = "DELETE /api/admin/shares/{{share_id}}"
parameters = {{ "path.share_id" = {world.carols_share} }}
[[operations]]
include-name = "POST /api/admin/jobs/{{job_id}}/retry"
parameters = {{ "path.job_id" = "{world.failed_job}" }}

# PUT /api/files/{{file_id}} takes a file name, and drops folders from it ("a/b.txt" is stored as "b.txt"),
# so PUT reaches every path below /api/files/ and is no undocumented method there; OPTIONS says as much
# in its Allow header. Every other method is probed.
[[operations]]
include-path-regex = "^/api/files/\\\\{{file_id\\\\}}/(content|thumbnail|preview)$"
phases.coverage.unexpected-methods = ["DELETE", "PATCH", "POST", "TRACE", "QUERY"]
"""


def _server_errors(process: SatchelProcess) -> list[dict[str, Any]]:
    """What the server itself logged as its own failure, whatever the fuzzer made of it."""
    events = process.events_so_far()
    return [e for e in events if e.get("event") == "http.unhandled_error" or e.get("status", 0) >= 500]


def _answered(process: SatchelProcess, document: dict[str, Any]) -> dict[str, Counter[int]]:
    """Each documented operation's statuses, from the server's own access log (share tokens are masked there)."""
    templates = [
        (
            method.upper(),
            re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path)) + "$"),
            f"{method.upper()} {path}",
        )
        for path, item in document["paths"].items()
        for method in item
    ]
    answered: dict[str, Counter[int]] = {label: Counter() for _, _, label in templates}
    for event in process.events_so_far():
        if event.get("event") != "http.request":
            continue
        for method, pattern, label in templates:
            if event["method"] == method and pattern.match(event["path"].replace("{token}", "x")):
                answered[label][event["status"]] += 1
                break
    return answered


def test_the_server_answers_every_generated_request_as_its_openapi_document_says(
    web: tuple[SatchelProcess, str], world: World, base_env: dict[str, str], tmp_path: Path
) -> None:
    process, url = web
    hooks = tmp_path / "hooks.py"
    # Resumable-upload bytes are raw bytes, as application/octet-stream's are.
    hooks.write_text(
        "import schemathesis\n"
        'schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")\n'
    )
    desk = TokenDesk(base_env, world.emails)
    try:
        config = tmp_path / "schemathesis.toml"
        config.write_text(_config(world, desk, hooks, tmp_path / "auth.json"))
        report = tmp_path / "report.json"
        run = subprocess.run(
            [str(SCHEMATHESIS), "--config-file", str(config), "--no-color", "run", f"{url}/openapi.json",
             "--checks", "all", "--report", "json", "--report-json-path", str(report), "--request-timeout", "30"],
            cwd=tmp_path, capture_output=True, text=True, timeout=840,
        )  # fmt: skip
    finally:
        desk.close()
    output = run.stdout[-20000:] + run.stderr[-5000:]
    assert report.exists(), output
    summary = json.loads(report.read_text())

    assert run.returncode == 0 and summary["complete"], output
    assert summary["failures"] == [] and summary["errors"] == [], output
    assert summary["test_cases"]["generated"] >= 1000, summary["test_cases"]
    assert _server_errors(process) == [], _server_errors(process)[:5]

    document = httpx.get(f"{url}/openapi.json").json()
    answered = _answered(process, document)
    unanswered = sorted(label for label, statuses in answered.items() if not any(200 <= s < 300 for s in statuses))
    # Every operation was reached past refusals at least once, so the checks above judged real answers. Previews
    # are made by `satchel worker`, which does not run here: that route is checked on its documented 404.
    assert unanswered == ["GET /api/files/{file_id}/thumbnail"], {label: dict(answered[label]) for label in unanswered}
