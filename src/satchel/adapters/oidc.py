"""An OpenID Connect provider (factor IV: a backing service chosen by URL, ``OIDC_ISSUER``), through authlib.

The provider's endpoints and keys come from its discovery document, read at first use (a process that never
shows the button never calls it) and kept; its keys are read again once when a token names a key not yet seen,
as providers rotate them. Every call goes through the provider's ``Guard``: an unreachable or failing provider
is a ``ServiceUnavailable`` (a 503 page), never a 500; a provider that answers with a refusal, or with a token
that does not verify, is ``ProviderRefused`` (a readable 400 page).
"""

from __future__ import annotations

import warnings
from typing import Any, cast

import httpx
from authlib.integrations.base_client.errors import OAuthError
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet, KeySetSerialization

from satchel.adapters.resilience import Guard
from satchel.domain.identities import Identity, PendingSignIn, ProviderRefused
from satchel.ports.health import ServiceUnavailable
from satchel.runtime.logging import get_logger

with warnings.catch_warnings():
    # authlib asks for its httpx2 fork when it finds httpx; httpx is the client Satchel and its tests already use.
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client

SERVICE = "identity provider"
SCOPE = "openid email profile"
LEEWAY = 60  # seconds of clock difference allowed between the provider and us
log = get_logger(__name__)


class ProviderFailing(Exception):
    """The provider answered, but not as a working provider does (a 5xx, a discovery document that is not one)."""


def _outage(exc: Exception) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500
    return isinstance(exc, httpx.TransportError | OSError | ProviderFailing)


class OidcProvider:
    def __init__(self, issuer: str, client_id: str, client_secret: str, *, name: str, timeout: float = 10.0) -> None:
        self.name = name
        self._issuer = issuer
        self._client_id = client_id
        self._client_secret = client_secret
        self._timeout = timeout
        self._guard = Guard(SERVICE, timeout=timeout, max_concurrent=16, is_outage=_outage)
        self._metadata: dict[str, Any] | None = None
        self._keys: dict[str, Any] | None = None

    async def authorization_url(self, pending: PendingSignIn, redirect_uri: str) -> str:
        metadata = await self._discovered()
        client = AsyncOAuth2Client(
            self._client_id, scope=SCOPE, redirect_uri=redirect_uri, code_challenge_method="S256"
        )
        url, _ = client.create_authorization_url(
            metadata["authorization_endpoint"],
            state=pending.state,
            nonce=pending.nonce,
            code_verifier=pending.code_verifier,
        )
        return str(url)

    async def identity(self, code: str, pending: PendingSignIn, redirect_uri: str) -> Identity:
        metadata = await self._discovered()
        token = await self._guard.call(lambda: self._token(metadata["token_endpoint"], code, pending, redirect_uri))
        if "id_token" not in token:
            raise ProviderRefused("The identity provider sent no ID token: is the openid scope allowed for Satchel?")
        claims = await self._verified(str(token["id_token"]), pending, metadata, str(token.get("access_token", "")))
        email = claims.get("email")
        return Identity(
            issuer=str(claims["iss"]),
            subject=str(claims["sub"]),
            email=str(email) if isinstance(email, str) and email else None,
            email_verified=claims.get("email_verified") is True,
        )

    async def _token(self, endpoint: str, code: str, pending: PendingSignIn, redirect_uri: str) -> dict[str, Any]:
        async with AsyncOAuth2Client(
            self._client_id, self._client_secret, redirect_uri=redirect_uri, timeout=self._timeout
        ) as client:
            try:
                token = await client.fetch_token(
                    endpoint, grant_type="authorization_code", code=code, code_verifier=pending.code_verifier
                )
            except OAuthError as exc:
                log.info("oidc.code_refused", error=exc.error)
                raise ProviderRefused() from None
            except ValueError:  # a 4xx that is not a token response
                raise ProviderRefused() from None
        return dict(token)

    async def _verified(
        self, id_token: str, pending: PendingSignIn, metadata: dict[str, Any], access_token: str
    ) -> CodeIDToken:
        algorithms = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        try:
            try:
                decoded = jwt.decode(
                    id_token,
                    KeySet.import_key_set(cast(KeySetSerialization, await self._key_set())),
                    algorithms=algorithms,
                )
            except InvalidKeyIdError:  # signed with a key we have not seen: the provider rotated its keys
                self._keys = None
                decoded = jwt.decode(
                    id_token,
                    KeySet.import_key_set(cast(KeySetSerialization, await self._key_set())),
                    algorithms=algorithms,
                )
            options = {
                "iss": {"essential": True, "value": metadata["issuer"]},
                "aud": {"essential": True, "value": self._client_id},
            }
            params = {"nonce": pending.nonce, "client_id": self._client_id, "access_token": access_token}
            claims = CodeIDToken(decoded.claims, decoded.header, options, params)
            claims.validate(leeway=LEEWAY)
        except (JoseError, ValueError) as exc:
            log.warning("oidc.id_token_refused", error=type(exc).__name__, reason=str(exc)[:200])
            raise ProviderRefused() from None
        return claims

    async def _discovered(self) -> dict[str, Any]:
        if self._metadata is None:
            url = self._issuer.rstrip("/") + "/.well-known/openid-configuration"
            metadata = await self._guard.call(lambda: self._json(url))
            needed = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
            if any(not isinstance(metadata.get(key), str) for key in needed):
                raise ServiceUnavailable(SERVICE, "its discovery document lacks an endpoint")
            if metadata["issuer"].rstrip("/") != self._issuer.rstrip("/"):
                raise ServiceUnavailable(SERVICE, "its discovery document names another issuer than OIDC_ISSUER")
            self._metadata = metadata
        return self._metadata

    async def _key_set(self) -> dict[str, Any]:
        if self._keys is None:
            metadata = await self._discovered()
            self._keys = await self._guard.call(lambda: self._json(metadata["jwks_uri"]))
        return self._keys

    async def _json(self, url: str) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as client:
            response = await client.get(url, headers={"Accept": "application/json"})
        if response.status_code != 200:
            raise ProviderFailing(f"{url} answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise ProviderFailing(f"{url} answered with something other than JSON") from None
        if not isinstance(body, dict):
            raise ProviderFailing(f"{url} answered with something other than a JSON object")
        return body
