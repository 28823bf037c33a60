"""One-time links mailed to someone: an invitation, a password reset. What they share is how their token is made.

The link's token is never stored: the row behind it keeps the token's SHA-256, as API tokens are kept. Nor does
the mail job that carries the link to the worker hold it: the job holds a random nonce, and the token is that
nonce's HMAC under ``SECRET_KEY`` and the link's purpose (``link_token``), so reading the database alone, jobs
included, gives no one a working link, and a nonce of one kind of link never makes a token of another kind.
Each kind uses its row up in one conditional statement of its own repository, so a link works once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Final, Literal

LinkPurpose = Literal["invitation", "password-reset"]
_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes of HMAC-SHA256 in url-safe base64, unpadded


def new_nonce() -> str:
    return secrets.token_urlsafe(32)  # 256 random bits: what the link's token is made from


def link_token(key: bytes, purpose: LinkPurpose, nonce: str) -> str:
    """The token in a link for ``purpose``, made from its nonce with the server's secret key."""
    digest = hmac.new(key, purpose.encode() + b":" + nonce.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_hash(token: str) -> str:
    """What a link's row keeps of its token: a fast hash is enough for 256 unguessable bits. A row is found by
    this hash, never by comparing tokens, so how long a lookup takes says nothing about any token."""
    return hashlib.sha256(token.encode()).hexdigest()


def is_link_token(value: str) -> bool:
    """Whether ``value`` could be a link's token at all; anything else is "no such link", unqueried."""
    return _TOKEN.fullmatch(value) is not None
