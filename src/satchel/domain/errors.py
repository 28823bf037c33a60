"""Domain errors. The edge (web, CLI) turns each into a status code and a message, in one place."""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain said no. ``message`` is safe to show to the user."""

    status = 400

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__ or type(self).__name__)
        self.message = str(self.args[0])


class NotFound(DomainError):
    """Not found."""

    status = 404


class Forbidden(DomainError):
    """You are not allowed to do that."""

    status = 403


class InvalidInput(DomainError):
    """The input is not valid."""

    status = 422


class Conflict(DomainError):
    """That conflicts with something that already exists."""

    status = 409


class Gone(DomainError):
    """This is no longer available."""

    status = 410


class TooLarge(DomainError):
    """Too large."""

    status = 413


class TooManyAttempts(DomainError):
    """Too many attempts; wait a moment and try again."""

    status = 429

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unauthenticated(DomainError):
    """Sign in first."""

    status = 401
