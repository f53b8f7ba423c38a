"""The plain-HTTP paths of the feed's own port: the page, `/metrics`, `/livez`, `/readyz`, and
the venues' REST APIs (`rest_route`: `/binance/api/...`, `/coinbase/...`, `venues/rest.py`), and
the operator's `POST /admin/scenario` (`admin.py`).

Each is a `_http.Route` (an `HttpRequest` in, an `HttpResponse` out), answered inside the
connection's task from what the server hands over here: its `Metrics` and a readiness callable.
No sockets and no trio of its own; every other path stays the HTTP front's 404.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tickwire.feed.server import metrics as m
from tickwire.feed.server.admin import PATH as ADMIN_PATH
from tickwire.feed.venues.rest import RestApi, RestRequest
from tickwire.feed.web import static_response
from tickwire.feed.ws.http import HttpRequest, HttpResponse, Route

Readiness = Callable[[], m.Response]
log = logging.getLogger("tickwire.server")
_INTERNAL = b'{"code":-1000,"msg":"internal error","message":"internal error"}'


def http_routes(
    metrics: m.Metrics, ready: Readiness, admin: Route | None = None
) -> dict[str, Route]:
    """The route table for `_http.Policy.routes`; `admin` answers `POST /admin/scenario`."""

    def page(req: HttpRequest) -> HttpResponse:
        target = req.path + (f"?{req.query}" if req.query else "")
        return _wrap(static_response(target, if_none_match=req.headers.get("if-none-match")))

    paths = ("/", "/index.html", "/app.js", "/worker.js", "/style.css")
    routes: dict[str, Route] = dict.fromkeys(paths, page)
    routes["/metrics"] = lambda req: _wrap(metrics.response(req.headers.get("accept")))
    routes["/livez"] = lambda req: _wrap(m.livez())
    routes["/readyz"] = lambda req: _wrap(ready())
    if admin is not None:
        routes[ADMIN_PATH] = admin
    return routes


def _wrap(resp: m.Response) -> HttpResponse:
    status, headers, body = resp
    return HttpResponse(status, tuple(headers), body)


def rest_route(
    api: RestApi, now_ns: Callable[[], int], refresh: Callable[[], None]
) -> Callable[[str], Route | None]:
    """`_http.Policy.rest_route` over the venues' REST handlers: each request reads the market
    as of `now_ns()`, after `refresh()` (an idle market steps to now first)."""

    def route(path: str) -> Route | None:
        handler = api.route(path)
        if handler is None:
            return None

        def answer(req: HttpRequest) -> HttpResponse:
            refresh()
            rest = RestRequest(req.method, req.path, req.query, req.headers, req.peer)
            try:
                resp = handler(rest, now_ns())
            except Exception:  # one request's bug: a 500 for it, logged, the server goes on
                log.exception("REST %s %s?%s: internal error", req.method, req.path, req.query)
                return HttpResponse(500, (("Content-Type", "application/json"),), _INTERNAL)
            return HttpResponse(resp.status, resp.headers, resp.body)

        return answer

    return route
