"""The one place an SCF integration response is built."""
import base64
import json
from dataclasses import dataclass, field
from typing import Any, Dict


@dataclass(frozen=True)
class Raw:
    """An answer that is not JSON (the console's pages): its bytes and headers, as they are."""

    body: bytes
    headers: Dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any) -> Dict[str, Any]:
    """API Gateway (with integrated response on) and Function URL both read this shape."""
    if isinstance(payload, Raw):
        return {"isBase64Encoded": True, "statusCode": status, "headers": dict(payload.headers),
                "body": base64.b64encode(payload.body).decode("ascii")}
    return {
        "isBase64Encoded": False,
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
    }
