"""What /openapi.json says beyond the routes' own signatures: every error a route answers, the credentials it
takes, and the limits this server was started with.

One document serves people (``/docs`` renders it) and programs (clients are generated from it, the API fuzzer
checks every answer against it), so it must be the truth: each status a route can answer with its
problem+json body and headers, and no constraint left for the client to find out by being refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Security
from fastapi.security import APIKeyCookie, HTTPBearer

from satchel.settings import Settings
from satchel.web.problems import PROBLEM_JSON
from satchel.web.sessions import COOKIE

Responses = dict[int | str, dict[str, Any]]

# Two ways to be signed in: these only describe them to the document; ``security.api_user`` decides.
TOKEN = HTTPBearer(
    scheme_name="token",
    bearerFormat="sat_…",
    description="An API token (`sat_…`): create one on the Account page, with `POST /api/tokens`, "
    "or as an operator with `satchel tokens create EMAIL`.",
    auto_error=False,
)
SESSION = APIKeyCookie(
    name=COOKIE,
    scheme_name="session",
    description="A browser session. `POST`, `PUT`, `PATCH` and `DELETE` also send the page's CSRF token as "
    "`X-CSRF-Token`.",
    auto_error=False,
)
SIGNED_IN = [Security(TOKEN), Security(SESSION)]  # a router's dependencies: either one will do

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details: `detail` is meant for people, `status` for programs.",
    "type": "object",
    "properties": {
        "type": {"type": "string", "const": "about:blank"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {
            "description": "422 only: what is wrong, and where (`loc`)",
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                },
                "required": ["loc", "msg"],
            },
        },
    },
    "required": ["type", "title", "status"],
}
_PROBLEM = {"schema": {"$ref": "#/components/schemas/Problem"}}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "required": True, "schema": {"type": "integer"}}}

# What each status means wherever a route does not say more.
WHY = {
    400: "The request is malformed",
    401: "No credentials, or they are not valid",
    403: "Missing or wrong `X-CSRF-Token` (browser sessions), or the account is disabled",
    404: "No such thing, or not yours",
    408: "The request body stopped arriving",
    409: "It conflicts with the current state",
    410: "Gone",
    412: "A precondition failed",
    413: "Too large",
    415: "Unsupported content type",
    416: "The range lies outside the file",
    422: "The request is not valid; `errors` says where",
    423: "Locked",
    429: "Too many attempts; wait `Retry-After` seconds",
    460: "Checksum mismatch",
    503: "A backing service is unavailable; retry after `Retry-After` seconds",
}
_HEADERS = {
    416: {"Content-Range": {"description": "`bytes */{size}`", "required": True, "schema": {"type": "string"}}},
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}


def problems(*statuses: int | tuple[int, str], pages: bool = False) -> Responses:
    """problem+json responses for ``statuses``; a ``(status, why)`` pair says more than the usual meaning.

    ``pages``: outside /api/, a browser (``Accept: text/html``) gets the same error as a page.
    """
    responses: Responses = {}
    for entry in statuses:
        status, why = entry if isinstance(entry, tuple) else (entry, WHY[entry])
        content: dict[str, Any] = {PROBLEM_JSON: _PROBLEM}
        if pages:
            content["text/html"] = {"schema": {"type": "string"}}
        responses[status] = {"description": why, "content": content, **_headers(status)}
    return responses


def _headers(status: int) -> dict[str, Any]:
    return {"headers": _HEADERS[status]} if status in _HEADERS else {}


async def _share_password(
    password: Annotated[
        str | None,
        Header(
            alias="X-Share-Password",
            description="the link's password, for scripts; browsers unlock the link on its page instead",
        ),
    ] = None,
) -> None:
    """Declares the header for the document; ``public`` reads it where a link needs its password."""


SHARE_PASSWORD = [Depends(_share_password)]
_BYTES = {"schema": {"type": "string", "format": "binary"}}
DOWNLOAD: Responses = {
    200: {
        "description": "The file with its own `Content-Type`, or several as `application/zip`",
        "content": {"*/*": _BYTES},
    },
    206: {"description": "The one byte range asked for with `Range` (a single file only)", "content": {"*/*": _BYTES}},
    302: {"description": "A short-lived presigned URL to the bytes (S3 with `SATCHEL_STORAGE_PRESIGN`)"},
}
QR_CODE: Responses = {
    200: {
        "description": "The link's URL as a QR code, an SVG picture (`image/svg+xml`): sandboxed, `nosniff`, "
        "never cached",
        "content": {"image/svg+xml": {"schema": {"type": "string"}}},
    },
}
PREVIEW: Responses = {
    200: {
        "description": "The file as a browser shows it, sandboxed and `inline`: an image, audio, video or PDF as its "
        "own type (decided from its bytes), or text as `text/plain; charset=utf-8`",
        "content": {"*/*": _BYTES},
    },
    206: {
        "description": "The one byte range asked for with `Range` (seeking in audio and video)",
        "content": {"*/*": _BYTES},
    },
    302: {"description": "With `SATCHEL_PREVIEW_ORIGIN`: a short-lived signed address of the preview on that origin"},
}
SHARE_PREVIEW: Responses = PREVIEW | problems(
    (401, "The link has a password: send `X-Share-Password`, or unlock it on its page; or it was wrong"),
    (403, "The link limits downloads and its owner did not allow previews, or the file is quarantined"),
    (404, "No such link, no such file in it, or the file has no preview (not a type browsers show safely)"),
    (409, "The file is still being checked for viruses (`SATCHEL_SCAN_REQUIRED`)"),
    (410, "The link expired, was revoked or has no downloads left"),
    416,
    422,
    (429, "Too many wrong passwords; wait `Retry-After` seconds"),
    503,
    pages=True,
)
SHARE_STATUS: Responses = problems(
    (401, "The link has a password: send `X-Share-Password`, or unlock it on its page; or it was wrong"),
    (404, "No such link"),
    (410, "The link expired, was revoked or has no downloads left: `detail` says which"),
    (429, "Too many wrong passwords; wait `Retry-After` seconds"),
    503,
)
SHARE_DOWNLOAD: Responses = DOWNLOAD | problems(
    (401, "The link has a password: send `X-Share-Password`, or unlock it on its page; or it was wrong"),
    (403, "Quarantined: malware was found in the file"),
    (404, "No such link, or no such file in it"),
    (409, "The file is still being checked for viruses (`SATCHEL_SCAN_REQUIRED`)"),
    (410, "The link expired, was revoked or has no downloads left"),
    416,
    422,
    (429, "Too many wrong passwords; wait `Retry-After` seconds"),
    503,
    pages=True,
)


def describe(app: FastAPI, settings: Settings) -> None:
    """Serve the document with the shared problem schema and this server's own limits filled in."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()  # FastAPI keeps it as app.openapi_schema; completed here, once
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas["Problem"] = PROBLEM_SCHEMA
            _validation_errors_are_problems(document)
            _absent_is_not_null(document)
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
            _longest_link(document, settings.share_max_days * 24)
            _largest_upload(document, settings.max_upload_bytes)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def _operations(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for operations in document["paths"].values():
        yield from operations.values()


def _validation_errors_are_problems(document: dict[str, Any]) -> None:
    """FastAPI adds a 422 to every route with parameters, as plain JSON; ours is problem+json (problems.install).

    A JSON body that is not even text (not UTF-8) is refused before validation, with a 400.
    """
    for operation in _operations(document):
        responses = operation["responses"]
        if "application/json" in responses.get("422", {}).get("content", {}):
            responses["422"] = problems(422)[422]
        if "application/json" in operation.get("requestBody", {}).get("content", {}) and "400" not in responses:
            responses["400"] = problems((400, "The body is not JSON text (UTF-8)"))[400]


def _absent_is_not_null(document: dict[str, Any]) -> None:
    """An optional header or query parameter is left out, never sent as the text `null`: drop FastAPI's null."""
    for operation in _operations(document):
        for parameter in operation.get("parameters", []):
            branches = parameter["schema"].get("anyOf", [])
            others = [branch for branch in branches if branch.get("type") != "null"]
            if len(others) == 1 and len(branches) == 2:
                parameter["schema"] = {**{k: v for k, v in parameter["schema"].items() if k != "anyOf"}, **others[0]}


def _longest_link(document: dict[str, Any], hours: int) -> None:
    """``expires_in_hours`` may be at most SATCHEL_SHARE_MAX_DAYS, a setting no route signature can know."""
    for operation in _operations(document):
        for parameter in operation.get("parameters", []):
            if parameter["name"] == "expires_in_hours":
                _at_most(parameter["schema"], hours)
    for schema in document["components"]["schemas"].values():  # shares and upload links alike
        if "expires_in_hours" in schema.get("properties", {}):
            _at_most(schema["properties"]["expires_in_hours"], hours)


def _largest_upload(document: dict[str, Any], size: int) -> None:
    """A resumable upload may be at most SATCHEL_MAX_UPLOAD_BYTES long; longer ones are refused with 413."""
    for operation in _operations(document):
        for parameter in operation.get("parameters", []):
            if parameter["name"] == "Upload-Length":
                _at_most(parameter["schema"], size)


def _at_most(schema: dict[str, Any], limit: int) -> None:
    for branch in schema.get("anyOf", [schema]):  # the number in `number | null`
        if branch.get("type") in ("number", "integer"):
            branch["maximum"] = limit
