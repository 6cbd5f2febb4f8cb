"""The protocol's error codes as exceptions. A handler raises one; the entry point turns it
into an `error` message for the client (docs/design.md §2), so bad input never crashes a handler."""

from __future__ import annotations


class CollabError(Exception):
    """An error the client is told about: `code` is one of the protocol's error codes."""

    code = "internal"
    closes_connection = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(CollabError):
    code = "bad_request"


class InvalidUpdate(CollabError):
    code = "invalid_update"


class TooLarge(CollabError):
    code = "too_large"


class Forbidden(CollabError):
    code = "forbidden"


class NoAccess(Forbidden):
    """A valid token without a role for the scene: told once, then closed."""

    closes_connection = True


class TokenExpired(CollabError):
    code = "token_expired"
    closes_connection = True
