"""Where RULES_URL's bytes come from: a plain http(s) GET, or ``cos://BucketName-APPID/key``, a private
COS object read with the function's own credentials (a request signed by the COS SDK), so the rules
need no public link and no link that expires.

Either way a fetch is bounded in total time and in size however slowly the server sends, asks with
the last ETag (an unchanged file costs a 304, or a HEAD on COS), and never puts the URL's query string or an error's
full text into what it raises.
"""
from __future__ import annotations

import re
import time
from typing import Any, Mapping, Optional, Tuple

from imguard.config import COS_URL, CosSettings
from imguard.moderation.ci import describe_sdk_error

# requests' timeouts count per read, so a server sending a byte every few seconds never trips
# them; the body must also arrive within this, in total, and be no larger than this.
FETCH_TOTAL_S = 10.0
MAX_RULES_BYTES = 4 * 1024 * 1024
_TIMEOUTS = (2.0, 5.0)  # connect, and each read
_READ_BYTES = 64 * 1024

Fetched = Optional[Tuple[bytes, Optional[str]]]  # (body, ETag); None: unchanged since that ETag


class FetchError(Exception):
    """RULES_URL gave nothing usable; the message says why, for the log."""


class HttpFetcher:
    def __init__(self, url: str, session: Any = None):
        import requests  # only a function with RULES_URL pays for importing it

        self._url = url
        self._session = session or requests.Session()

    def fetch(self, etag: Optional[str]) -> Fetched:
        import requests
        import urllib3

        # Uncompressed, so MAX_RULES_BYTES counts what is parsed, not what a gzip bomb expands to.
        headers = {"Accept-Encoding": "identity"}
        if etag:
            headers["If-None-Match"] = etag
        deadline = time.monotonic() + FETCH_TOTAL_S
        try:
            with self._session.get(self._url, headers=headers, timeout=_TIMEOUTS, stream=True) as response:
                if response.status_code == 304:
                    return None
                if response.status_code != 200:
                    raise FetchError(f"HTTP {response.status_code}")
                return read_body(response.raw, response.headers, deadline), response.headers.get("ETag")
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            # Only the type: the message of a connection error quotes the URL, query string included.
            raise FetchError(type(exc).__name__) from None


class CosFetcher:
    """``cos://BucketName-APPID/key`` in the bucket's region (COS_REGION), as the function's role
    (or COS_SECRET_ID/COS_SECRET_KEY) sees it: the role needs cos:GetObject on that key."""

    def __init__(self, url: str, cos: CosSettings):
        from qcloud_cos import CosConfig, CosS3Client

        self._bucket, self._key = parse_cos_url(url)
        # retry=0: a failed fetch is tried again at the next refresh, not in a sleeping loop now.
        self._client = CosS3Client(CosConfig(**cos.sdk_options(_TIMEOUTS[1])), retry=0)

    def fetch(self, etag: Optional[str]) -> Fetched:
        from qcloud_cos.cos_exception import CosClientError, CosServiceError

        deadline = time.monotonic() + FETCH_TOTAL_S
        try:
            # A HEAD, not If-None-Match: the SDK cannot hand back a 304 (its stream wants a length).
            if etag and self._client.head_object(Bucket=self._bucket, Key=self._key).get("ETag") == etag:
                return None
            response = self._client.get_object(Bucket=self._bucket, Key=self._key)
            raw = response["Body"].get_raw_stream()
            return read_body(raw, response, deadline), response.get("ETag")
        except CosServiceError as exc:
            raise FetchError(f"COS answered {describe_sdk_error(exc)}") from None
        except CosClientError as exc:
            raise FetchError(f"COS: {describe_sdk_error(exc)}") from None


def parse_cos_url(url: str) -> Tuple[str, str]:
    match = re.fullmatch(COS_URL, url)
    if match is None:
        raise ValueError("not a cos://BucketName-APPID/key URL")
    return match.group(1), match.group(2)


def fetcher_for(url: str, cos: Optional[CosSettings] = None, session: Any = None):
    if url.startswith("cos://"):
        return CosFetcher(url, cos or CosSettings())
    return HttpFetcher(url, session)


def read_body(raw: Any, headers: Mapping[str, str], deadline: float) -> bytes:
    """The whole body of a streamed response (urllib3's ``raw``), refused past MAX_RULES_BYTES or
    past ``deadline`` (time.monotonic()).

    read1 returns whatever one read brings, so the deadline is checked at least once per
    read timeout however slowly the bytes come; iter_content would wait to fill each chunk.
    """
    declared = str(headers.get("Content-Length", ""))
    if declared.isdigit() and int(declared) > MAX_RULES_BYTES:
        raise FetchError(f"body of {declared} bytes: at most {MAX_RULES_BYTES} are allowed")
    body = bytearray()
    while True:
        chunk = raw.read1(_READ_BYTES)
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > MAX_RULES_BYTES:
            raise FetchError(f"body over {MAX_RULES_BYTES} bytes")
        if time.monotonic() > deadline:
            raise FetchError(f"body not complete within {FETCH_TOTAL_S} s")
