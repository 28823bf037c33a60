"""Absolute URLs for links Satchel hands out (share links, redirects)."""

from __future__ import annotations

from fastapi import Request

from satchel.web.security import services_of


def base_url(request: Request) -> str:
    """SATCHEL_PUBLIC_URL when set (behind a proxy), else the URL this request came in on."""
    public = services_of(request).settings.public_url
    return (public or str(request.base_url)).rstrip("/")


def share_url(base: str, token: str) -> str:
    """The address of a share link, the one its recipients open."""
    return f"{base}/s/{token}"


def request_url(base: str, token: str) -> str:
    """The address of an upload link, the one its uploaders open."""
    return f"{base}/r/{token}"
