"""Absolute URLs for links Satchel hands out (share links, redirects)."""

from __future__ import annotations

from fastapi import Request

from satchel.web.security import services_of


def base_url(request: Request) -> str:
    """SATCHEL_PUBLIC_URL when set (behind a proxy), else the URL this request came in on."""
    public = services_of(request).settings.public_url
    return (public or str(request.base_url)).rstrip("/")
