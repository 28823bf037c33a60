"""Sign-in through an OpenID Connect provider: the provider as a backing service, behind this port."""

from __future__ import annotations

from typing import Protocol

from satchel.domain.identities import Identity, PendingSignIn


class IdentityProvider(Protocol):
    """One OpenID Connect provider, found through its issuer's discovery document at first use."""

    name: str  # what the sign-in button calls it: "Sign in with …"

    async def authorization_url(self, pending: PendingSignIn, redirect_uri: str) -> str:
        """Where to send the browser: the provider's authorization endpoint, asking for an authorization code
        with ``pending``'s state, nonce and PKCE challenge, to come back to ``redirect_uri``."""

    async def identity(self, code: str, pending: PendingSignIn, redirect_uri: str) -> Identity:
        """Exchange the code (with the PKCE verifier) for tokens and return who the ID token names, its signature
        checked against the provider's keys and its claims (issuer, audience, expiry, nonce) against this sign-in.

        Raises ``ProviderRefused`` when the provider refused the code or its token does not verify, and
        ``ServiceUnavailable`` when it does not answer in time or is failing."""
