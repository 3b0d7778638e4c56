"""The HTTP edge: SCF trigger events in, integration responses out."""
from imguard.http.errors import BadRequest, Forbidden, HttpError, NestedTooDeep, ServiceUnavailable, Unauthorized
from imguard.http.request import HttpRequest
from imguard.http.response import json_response

__all__ = [
    "BadRequest",
    "Forbidden",
    "HttpError",
    "HttpRequest",
    "NestedTooDeep",
    "ServiceUnavailable",
    "Unauthorized",
    "json_response",
]
