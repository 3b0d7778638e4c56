"""The one place an SCF integration response is built."""
import json
from typing import Any, Dict


def json_response(status: int, payload: Any) -> Dict[str, Any]:
    """API Gateway (with integrated response on) and Function URL both read this shape."""
    return {
        "isBase64Encoded": False,
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
    }
