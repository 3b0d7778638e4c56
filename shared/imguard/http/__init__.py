"""The HTTP edge: SCF trigger events in, integration responses out."""
from imguard.http.errors import BadRequest, Forbidden, HttpError, ServiceUnavailable, Unauthorized
from imguard.http.request import HttpRequest
from imguard.http.response import json_response

__all__ = [
    "BadRequest",
    "Forbidden",
    "HttpError",
    "HttpRequest",
    "ServiceUnavailable",
    "Unauthorized",
    "json_response",
]
