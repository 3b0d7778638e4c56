"""Is this callback from our IM application? (im-callback-protocol.md §1.1-1.2)

IM's ``Sign`` covers only ``RequestTime``, not the body or the command: a captured
(Sign, RequestTime) pair vouches for any body until it goes stale. So it is a
freshness token, and the window is kept as short as IM advises. Nothing
destructive rests on it alone: audio_result confirms with IM's own records.
"""
import hashlib
import hmac
import re
import time
from typing import Callable, Optional

from imguard.http import Forbidden, HttpRequest

_SIGN = re.compile(r"[0-9a-fA-F]{64}")
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


def expected_sign(token: str, request_time: str) -> str:
    """IM's callback signature: hex sha256 of the token immediately followed by RequestTime."""
    return hashlib.sha256((token + request_time).encode("utf-8")).hexdigest()


def authenticate(
    request: HttpRequest,
    sdk_app_id: int,
    token: Optional[str],
    max_skew_s: int,
    clock: Callable[[], float] = time.time,
) -> None:
    """Raise Forbidden unless the request names our SDKAppID and, with a token, is signed and fresh."""
    if request.query("SdkAppid") != str(sdk_app_id):
        raise Forbidden("SdkAppid does not match this application")
    if token is None:
        return
    sign = request.query("Sign")
    request_time = request.query("RequestTime")
    if not sign or not request_time:
        raise Forbidden("Sign and RequestTime are required")
    # Checked for shape first: only then is it safe to encode and compare (a lone surrogate cannot be encoded).
    if not _UNIX_SECONDS.fullmatch(request_time):
        raise Forbidden("RequestTime is not a Unix time in seconds")
    if not _SIGN.fullmatch(sign):
        raise Forbidden("Sign is not a hex SHA-256 digest")
    if not hmac.compare_digest(sign.lower(), expected_sign(token, request_time)):
        raise Forbidden("Sign does not match")
    if abs(clock() - int(request_time)) > max_skew_s:
        raise Forbidden("RequestTime is too far from now", max_skew_s=max_skew_s)
