"""The console as a third SCF function behind its own Function URL: the trigger event, read by the same
view the callbacks use, becomes a WSGI request (werkzeug's own builder), and Flask's answer becomes the
integration response SCF expects, built where every answer is (imguard.http)."""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

from werkzeug.test import EnvironBuilder, run_wsgi_app

from imguard.http.boundary import serve
from imguard.http.request import HttpRequest
from imguard.http.response import Raw

Handler = Callable[[Any, Any], Dict[str, Any]]


def create_handler(environ: Optional[Dict[str, str]] = None) -> Handler:
    from imguard.console.app import create_app
    from imguard.console.settings import ConsoleSettings

    app = create_app(ConsoleSettings.from_env(environ))  # a bad variable stops the cold start, naming each

    def page(request: HttpRequest) -> Tuple[int, Raw]:
        headers = request.headers
        builder = EnvironBuilder(path=request.path, method=request.method, headers=headers,
                                 query_string=request.queries, data=request.raw_body,
                                 base_url=f"https://{headers.get('host', 'console.invalid')}")
        try:
            body, status, answer_headers = run_wsgi_app(app, builder.get_environ(), buffered=True)
            payload = b"".join(body)
        finally:
            builder.close()
        return int(status.split()[0]), Raw(payload, {k: v for k, v in answer_headers.items()})

    def main_handler(event: Any, context: Any) -> Dict[str, Any]:
        return serve(event, context, page)

    return main_handler
