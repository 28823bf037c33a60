"""Sign-in through the OpenID Connect provider: ``GET /auth/oidc`` sends the browser there, and the provider
sends it back to ``/auth/oidc/callback``. Both are 404 unless ``OIDC_ISSUER`` names a provider.

The start is a link, not a form: the pages' policy lets forms post to this site alone (``form-action 'self'``),
and browsers hold a form's redirect to that too. Nothing is changed by it but this browser's pending sign-in,
whose state only this browser's session knows, so no other site can finish a sign-in it started.

What the sign-in must remember in between (its state, nonce and PKCE verifier) is kept in the server-side
session, and forgotten when the provider answers, whatever the answer: a callback URL works once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from satchel.domain.errors import DomainError, NotFound
from satchel.domain.identities import PendingSignIn
from satchel.services.provider_sign_in import ProviderSignIn
from satchel.web.pages import safe_next
from satchel.web.security import ServicesDep, SessionDep, client_of, start_session
from satchel.web.templating import render
from satchel.web.urls import base_url

router = APIRouter(prefix="/auth/oidc", include_in_schema=False)
CALLBACK = "/auth/oidc/callback"
Param = Annotated[str | None, Query(max_length=4096)]


def _sign_in(services: ServicesDep) -> ProviderSignIn:
    if services.provider_sign_in is None:
        raise NotFound("No identity provider is set up on this server: sign in with your password.")
    return services.provider_sign_in


@router.get("")
async def begin(request: Request, services: ServicesDep, session: SessionDep, next: Param = None) -> Response:
    url, pending = await _sign_in(services).begin(base_url(request) + CALLBACK)
    await session.set("oidc", {**_kept(pending), "next": safe_next(next)})
    return RedirectResponse(url, status_code=303)


@router.get("/callback")
async def callback(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    state: Param = None,
    code: Param = None,
    error: Param = None,
) -> Response:
    sign_in = _sign_in(services)
    kept = await session.get("oidc")
    if kept is not None:
        await session.set("oidc", None)  # one answer per sign-in, whatever it says
    try:
        user = await sign_in.finish(
            _pending(kept),
            state=state,
            code=code,
            error=error,
            redirect_uri=base_url(request) + CALLBACK,
            client=client_of(request),
        )
    except DomainError as exc:
        return await render(
            request, "sign_in_problem.html", exc.status, problem=exc.message, provider=sign_in.provider_name
        )
    await start_session(session, user)
    return RedirectResponse(safe_next(kept.get("next") if kept else None), status_code=303)


def _kept(pending: PendingSignIn) -> dict[str, str]:
    return {
        "state": pending.state,
        "nonce": pending.nonce,
        "code_verifier": pending.code_verifier,
        "started_at": pending.started_at.isoformat(),
    }


def _pending(kept: Any) -> PendingSignIn | None:
    """The sign-in this session started, or None if it started none (or kept something else there)."""
    try:
        started = datetime.fromisoformat(kept["started_at"])
        return PendingSignIn(str(kept["state"]), str(kept["nonce"]), str(kept["code_verifier"]), started)
    except (TypeError, KeyError, ValueError):
        return None
