"""Exceptions that carry their HTTP status; ``imguard.http.boundary`` turns them into answers."""
from typing import Any, Dict


class HttpError(Exception):
    """An answer other than 200, with a reason the caller can read."""

    status = 500
    code = "InternalError"

    def __init__(self, message: str, **details: Any):
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> Dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.details}


class BadRequest(HttpError):
    """The request cannot be read (not JSON, wrong shape, bad encoding)."""

    status = 400
    code = "BadRequest"


class NestedTooDeep(BadRequest):
    """The body is JSON nested deeper than the reader goes. IM builds such a body only from
    what a sender nested (merged-forwards of merged-forwards), so im_callback decides it
    as oversize content rather than refusing it."""


class Unauthorized(HttpError):
    """The request carries no valid proof of where it came from."""

    status = 401
    code = "Unauthorized"


class Forbidden(HttpError):
    """The request is readable but not for this application."""

    status = 403
    code = "Forbidden"


class ServiceUnavailable(HttpError):
    """Try again later (CI may call back again)."""

    status = 503
    code = "ServiceUnavailable"
