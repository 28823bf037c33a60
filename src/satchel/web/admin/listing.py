"""What the admin console's listing pages share: page numbers, the query string pages keep, times typed in."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from fastapi.responses import RedirectResponse

from satchel.domain.errors import InvalidInput

PAGE_SIZE = 50


def pages_of(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


def offset_of(page: int) -> int:
    return (page - 1) * PAGE_SIZE


def kept_query(**fields: str | None) -> str:
    """The filters a page was asked for, as the start of its pages' links (``a=1&b=2&``)."""
    kept = {name: value for name, value in fields.items() if value}
    return urlencode(kept) + "&" if kept else ""


def typed_time(value: str | None, label: str) -> datetime | None:
    """A time from a form's ``datetime-local`` field (or an ISO 8601 one): without a zone, it is UTC."""
    if not value or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"The {label} time is not a date and time (like 2026-12-05T14:30).") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def back_to(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)
