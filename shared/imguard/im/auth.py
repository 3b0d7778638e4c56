"""Is this callback from our IM application? (im-callback-protocol.md §1.1-1.2)"""
import hashlib
import hmac
import time
from typing import Callable, Optional

from imguard.http import Forbidden, HttpRequest


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
    if not hmac.compare_digest(sign.lower().encode(), expected_sign(token, request_time).encode()):
        raise Forbidden("Sign does not match")
    try:
        skew = abs(clock() - int(request_time))
    except ValueError:
        raise Forbidden("RequestTime is not a Unix time in seconds") from None
    if skew > max_skew_s:
        raise Forbidden("RequestTime is too far from now", max_skew_s=max_skew_s)
