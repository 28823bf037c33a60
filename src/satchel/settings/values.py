"""What a setting's value must look like: backing-service URLs Satchel could connect with, trusted proxies, origins."""

from __future__ import annotations

import ipaddress
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator

# Schemes that name a server: without a host there is nothing to connect to. PostgreSQL may
# use a local socket instead (``postgresql:///db?host=/run/postgresql``), Redis a ``unix://`` path.
_NEEDS_HOST = frozenset({"redis", "rediss", "amqp", "amqps", "smtp", "smtps", "tcp", "http", "https"})


def _port_problem(netloc: str) -> str | None:
    """What is wrong with the URL's port, if anything; the port is shown only when it is a number."""
    host_port = netloc.rpartition("@")[2]  # never look at the credentials
    port = host_port.rpartition("]")[2].partition(":")[2]  # after an [IPv6] host's bracket, if any
    if not port:
        return None
    if not (port.isascii() and port.isdigit()):
        return "expected a port from 1 to 65535, found a port that is not a number"
    if not 1 <= int(port) <= 65535:
        return f"expected a port from 1 to 65535, found {int(port)}"
    return None


def _url_problem(value: str, schemes: tuple[str, ...]) -> str | None:
    """Why a backing-service URL cannot work, checked before any connection is tried."""
    try:
        parts = urlsplit(value)
    except ValueError:  # an unbalanced [ of an IPv6 host
        return "expected a URL, found one that cannot be parsed"
    if parts.scheme not in schemes:
        supported = " or ".join(f"{s}://" for s in schemes)
        found = f"{parts.scheme}://" if parts.scheme else "no scheme"
        return f"expected a URL starting {supported}, found {found}"
    if parts.scheme == "s3" and not parts.netloc:
        return "expected a bucket (s3://bucket or s3://bucket/prefix), found none"
    if parts.scheme in ("file", "unix") and not (parts.netloc + parts.path).strip("/"):
        return f"expected a path ({parts.scheme}:///absolute/path), found none"
    if parts.scheme in _NEEDS_HOST and not parts.hostname:
        return f"expected a host ({parts.scheme}://host:port), found none"
    return _port_problem(parts.netloc)


def _url_check(schemes: tuple[str, ...]) -> AfterValidator:
    """A validator that accepts a URL only when Satchel could connect with it: scheme, host, port, bucket, path."""

    def check(value: str) -> str:
        if problem := _url_problem(value, schemes):
            raise ValueError(problem)
        return value

    return AfterValidator(check)


DatabaseUrl = Annotated[str, _url_check(("postgresql", "postgres", "postgresql+psycopg"))]
RedisUrl = Annotated[str, _url_check(("redis", "rediss", "unix"))]
BrokerUrl = Annotated[str, _url_check(("redis", "rediss", "amqp", "amqps"))]
StorageUrl = Annotated[str, _url_check(("file", "s3", "memory"))]
EmailUrl = Annotated[str, _url_check(("smtp", "smtps", "console"))]
ClamavUrl = Annotated[str, _url_check(("tcp",))]
HttpUrl = Annotated[str, _url_check(("http", "https"))]


def trusted_proxies(value: str) -> str:
    """``*`` or IP addresses and networks, comma-separated; empty trusts no proxy at all."""
    for item in (part.strip() for part in value.split(",")):
        if not item or item == "*":
            continue
        try:
            ipaddress.ip_network(item)  # strict: 10.0.0.1/8 is a typo for 10.0.0.0/8
        except ValueError:
            raise ValueError(
                f"expected IP addresses or networks (10.0.0.5, 10.0.0.0/8) or *, comma-separated, found {item!r}"
            ) from None
    return value


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased, without a default port."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    host = f"[{host}]" if ":" in host else host
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = "" if parts.port in (None, default) else f":{parts.port}"
    return f"{parts.scheme}://{host}{port}"


def redact_url(url: str) -> str:
    """The URL with any password replaced, safe to print or log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]  # keeps [IPv6] brackets and the port as written
    netloc = f"{parts.username}:***@{host}" if parts.username else f"***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))
