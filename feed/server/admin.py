"""`POST /admin/scenario`: an operator starts a market scenario on the running server.

The request carries everything in its query (`name=flash-crash` or `toml=<the file's text>`,
and `symbol=AAPL` to play it on that symbol only) and the server's admin token as
`Authorization: Bearer TOKEN`; `tickwire scenario run` sends it. The scenario is checked
against the server's universe and plays through the market's own scenario path
(`Market.start_scenario`, as `serve --scenario` does), its times counted from the first moment
of the market not made yet. Every answer is one line of JSON (`error` says what was wrong).
A server started without `--admin-token` answers 404 and says so. Sans-IO: the market step
and the clock are the caller's.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import orjson

from tickwire.feed.ws.http import HttpRequest, HttpResponse, Route
from tickwire.simulators import Universe
from tickwire.simulators.scenario import Scenario, ScenarioError, load, parse

PATH = "/admin/scenario"
log = logging.getLogger("tickwire.server")
_JSON = (("Content-Type", "application/json"),)

# Starts a checked scenario on the market; returns seconds from now until its time 0, or a
# reason it cannot (a replay or a bus gateway has no market of its own).
Starter = Callable[[Scenario], "float | str"]


def _answer(status: int, **body: object) -> HttpResponse:
    return HttpResponse(status, _JSON, orjson.dumps(body) + b"\n")


def scenario_route(admin_token: str | None, universe: Universe, start: Starter) -> Route:
    """The route of `PATH`, for `Policy.routes`."""

    def route(req: HttpRequest) -> HttpResponse:
        if not admin_token:
            return _answer(404, error="this server has no admin token: start it with --admin-token")
        if req.method != "POST":
            return _answer(405, error=f"{PATH} takes POST, got {req.method}")
        scheme, _, sent = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            sent.strip().encode(), admin_token.encode()
        ):
            log.warning("admin: refused %s from %s: wrong or missing admin token", PATH, req.peer)
            return _answer(401, error="admin token missing or wrong")
        try:
            scenario = _scenario(req.query, universe)
        except ScenarioError as exc:
            return _answer(400, error=str(exc))
        started = start(scenario)
        if isinstance(started, str):
            return _answer(409, error=started)
        log.info(
            "admin: scenario %s started by %s (%d events, time 0 in %.1f s)",
            scenario.name,
            req.peer,
            len(scenario.events),
            started,
        )
        return _answer(200, scenario=scenario.name, events=len(scenario.events), in_s=started)

    return route


def _scenario(query: str, universe: Universe) -> Scenario:
    params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    if ("name" in params) == ("toml" in params):
        raise ScenarioError("give the scenario's name= or its toml= text (one of them)")
    if "name" in params:
        name = params["name"]
        if "/" in name or name.endswith(".toml"):  # never a path on the server's disk
            raise ScenarioError(f"{name!r}: name a shipped scenario, or send the file's text")
        scenario = load(name, universe)
    else:
        scenario = parse(params["toml"], universe, shown=params.get("file", "<scenario>"))
    symbol = params.get("symbol")
    if symbol is None:
        return scenario
    ids = {s.upper(): i for i, s in enumerate(universe.symbols)}
    if symbol.upper() not in ids:
        raise ScenarioError(f"symbol {symbol[:40]!r} is not in the server's universe")
    only = ids[symbol.upper()]
    events = tuple(replace(e, symbols=np.array([only], np.intp)) for e in scenario.events)
    return replace(scenario, events=events)


def admin_route(config: Any, source: object, universe: Universe) -> Route:
    """The admin route of a server with `config` (its `admin_token`), `source` (a market
    source has `start_scenario`; any other answers 409) and `universe`."""
    start = getattr(source, "start_scenario", None)
    if start is None:
        return scenario_route(config.admin_token, universe, lambda s: _NO_MARKET)
    return scenario_route(config.admin_token, universe, start)


_NO_MARKET = "this server has no simulated market to play a scenario on (a replay or a gateway)"

__all__ = ["PATH", "Starter", "admin_route", "scenario_route"]
