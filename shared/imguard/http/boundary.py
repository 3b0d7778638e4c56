"""The single place where exceptions become HTTP answers."""
from typing import Any, Callable, Dict, Tuple

from imguard import logs
from imguard.http.errors import HttpError
from imguard.http.request import HttpRequest
from imguard.http.response import json_response

Route = Callable[[HttpRequest], Tuple[int, Any]]


def serve(event: Any, context: Any, route: Route) -> Dict[str, Any]:
    """Run ``route`` on the wrapped event; whatever happens, return an integration response."""
    request = HttpRequest(event, context)
    try:
        status, payload = route(request)
    except HttpError as exc:
        logs.emit(
            "http.rejected",
            request_id=request.request_id,
            status=exc.status,
            error=exc.code,
            reason=exc.message,
        )
        return json_response(exc.status, exc.body())
    except Exception as exc:  # the last line of defence: never hand SCF a traceback
        logs.failure("http.crashed", exc, request_id=request.request_id)
        return json_response(500, {"error": "InternalError", "message": "internal error, see logs"})
    return json_response(status, payload)
