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
from dataclasses import dataclass, replace
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


@dataclass(frozen=True, slots=True)
class Forwarded:
    """A checked scenario sent on to the market that plays it (a bus gateway's producer)."""

    to: str  # who plays it, as the answer names it: "the bus producer HOST:PID"


# Starts a checked scenario on the market (or forwards the request to it); returns seconds from
# now until its time 0, where it went, or a reason it cannot (a replay has no market).
Starter = Callable[[Scenario, HttpRequest], "float | Forwarded | str"]


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
            scenario = scenario_of(req.query, universe)
        except ScenarioError as exc:
            return _answer(400, error=str(exc))
        started = start(scenario, req)
        if isinstance(started, str):
            return _answer(409, error=started)
        if isinstance(started, Forwarded):
            who = req.peer
            log.info("admin: scenario %s from %s forwarded to %s", scenario.name, who, started.to)
            body = {"scenario": scenario.name, "events": len(scenario.events)}
            return _answer(202, **body, forwarded=started.to)
        log.info(
            "admin: scenario %s started by %s (%d events, time 0 in %.1f s)",
            scenario.name,
            req.peer,
            len(scenario.events),
            started,
        )
        return _answer(200, scenario=scenario.name, events=len(scenario.events), in_s=started)

    return route


def scenario_of(query: str, universe: Universe) -> Scenario:
    """The scenario an admin request's `query` asks for, checked against `universe`; raises
    ScenarioError saying what is wrong."""
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


def play_forwarded(universe: Universe, start: Callable[[Scenario], float | str], req: Any) -> None:
    """A bus producer plays a scenario a gateway forwarded (`bus.admin.AdminRequest` `req`,
    checked there and again here against this market's `universe`) with `start`."""
    try:
        scenario = scenario_of(req.query, universe)
    except ScenarioError as exc:
        log.warning("admin: scenario from %s via %s refused: %s", req.peer, req.gateway, exc)
        return
    started = start(scenario)
    if isinstance(started, str):
        log.warning("admin: scenario %s from %s refused: %s", scenario.name, req.peer, started)
        return
    log.info(
        "admin: scenario %s started by %s via gateway %s (%d events, time 0 in %.1f s)",
        scenario.name,
        req.peer,
        req.gateway,
        len(scenario.events),
        started,
    )


def admin_route(config: Any, source: object, universe: Universe) -> Route:
    """The admin route of a server with `config` (its `admin_token`), `source` (a market
    source has `start_scenario`, a bus gateway `forward_scenario`; any other answers 409) and
    `universe`."""
    forward = getattr(source, "forward_scenario", None)
    if forward is not None:
        return scenario_route(config.admin_token, universe, forward)
    start = getattr(source, "start_scenario", None)
    if start is None:
        return scenario_route(config.admin_token, universe, lambda s, req: _NO_MARKET)
    return scenario_route(config.admin_token, universe, lambda s, req: start(s))


_NO_MARKET = "this server has no simulated market to play a scenario on (a replay)"

__all__ = [
    "PATH",
    "Forwarded",
    "Starter",
    "admin_route",
    "play_forwarded",
    "scenario_of",
    "scenario_route",
]
