"""Prometheus metrics, `/livez` and `/readyz` for the feed's own port.

Counters are not incremented through prometheus-client on the hot path: the server already
counts everything for the `stats` op, so a custom collector reads one `statistics()`-like dict
when `/metrics` is scraped and turns it into metric families. The only per-step calls are the
two histograms, observed by the generator once per step (~2 us at a 1 ms cadence).

The registry is private to each `Metrics` object (never the process-global one), so two servers
in one process (the tests, `tickwire demo`) never mix their figures.

Input keys the collector reads, each optional (a missing key omits its family; no zero is
invented): `clients`, `connections_total`, `connections_refused`, `messages_sent`, `ticks_sent`,
`bytes_sent`, `ticks_conflated`, `ticks_published`, `cadence_overruns`, `uptime_s`, `symbols`,
`errors` ({wire code: count}), `closes` ({close code: count}), `bus_lag_s`, `bus_up`,
`bus_gaps`, `bus_takeovers`, `bus_standbys`, `bus_active`, `bus_producer` (the lease holder,
HOST:PID, as a label), `process_cpu_s`, `handshakes_shed`,
`alpaca_auth_failures`.

Must never import trio: it is a pure function of what the server hands it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from tickwire.feed.urls import redact

Headers = list[tuple[str, str]]
Response = tuple[int, Headers, bytes]
StatsSource = Callable[[], Mapping[str, Any]]

# name (without prefix and _total), input key, help
_COUNTERS = (
    ("connections", "connections_total", "WebSocket connections accepted"),
    ("connections_refused", "connections_refused", "connections refused (bad token, full)"),
    (
        "handshakes_shed",
        "handshakes_shed",
        "sockets closed before their request came, to make room for newer ones",
    ),
    ("alpaca_auth_failures", "alpaca_auth_failures", "failed Alpaca auths (key guesses)"),
    ("messages_sent", "messages_sent", "data and heartbeat messages sent to clients"),
    ("ticks_sent", "ticks_sent", "tick records sent to clients"),
    ("bytes_sent", "bytes_sent", "WebSocket payload bytes sent to clients"),
    ("ticks_conflated", "ticks_conflated", "updates folded into a later tick for a client"),
    ("ticks_published", "ticks_published", "updates the market published into the hub"),
    ("cadence_overruns", "cadence_overruns", "generator steps that fell a cadence behind"),
    ("bus_gaps", "bus_gaps", "times this gateway lost bus entries and resent a snapshot"),
    ("bus_takeovers", "bus_takeovers", "times a standby producer took over the bus namespace"),
    ("process_cpu_seconds", "process_cpu_s", "CPU time of this bus process, user and system"),
)
_GAUGES = (
    ("clients", "clients", "connected clients"),
    ("uptime_seconds", "uptime_s", "seconds since the server started"),
    ("symbols", "symbols", "symbols in the universe"),
    ("bus_lag_seconds", "bus_lag_s", "age of the newest bus entry read by this gateway"),
    ("bus_up", "bus_up", "1 while this gateway reads the bus, 0 while Redis is unreachable"),
    ("bus_standbys", "bus_standbys", "producers standing by on the bus namespace"),
    ("bus_active", "bus_active", "1 while this producer holds the bus lease, 0 on standby"),
)
# Step time at a 1 ms cadence is tens to hundreds of us; latency spans 0.1 ms to seconds.
STEP_BUCKETS_S = (5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2.5e-2, 0.1)
LATENCY_BUCKETS_S = (1e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 1.0, 5.0)


class _FeedCollector(Collector):
    """Metric families built from one statistics dict at scrape time."""

    def __init__(self, stats: StatsSource) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self._stats()
        for name, key, doc in _COUNTERS:
            if key in s:
                yield CounterMetricFamily(f"tickwire_{name}", doc, value=s[key])
        for name, key, doc in _GAUGES:
            if key in s and s[key] is not None:
                yield GaugeMetricFamily(f"tickwire_{name}", doc, value=s[key])
        if s.get("bus_producer") is not None:
            holder = GaugeMetricFamily(
                "tickwire_bus_producer_info",
                "the producer holding the bus lease (HOST:PID; empty when none)",
                labels=["producer"],
            )
            holder.add_metric([str(s["bus_producer"])], 1)
            yield holder
        for name, key, label, doc in (
            ("errors", "errors", "code", "error replies sent, by wire error code"),
            ("closes", "closes", "code", "connections closed, by WebSocket close code"),
            ("faults_injected", "faults_injected", "kind", "injected faults, by kind"),
        ):
            if key in s:
                family = CounterMetricFamily(f"tickwire_{name}", doc, labels=[label])
                for code, count in sorted(s[key].items(), key=lambda kv: str(kv[0])):
                    family.add_metric([str(code)], count)
                yield family


class Metrics:
    """The feed's metrics: counters read from `stats()` at scrape time, two histograms."""

    def __init__(self, stats: StatsSource, *, version: str = "") -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_FeedCollector(stats))
        info = GaugeMetricFamily(
            "tickwire_build_info", "tickwire's version (always 1)", labels=["version"]
        )
        info.add_metric([version or "unknown"], 1)
        self.registry.register(_Constant(info))
        self.step_seconds = Histogram(
            "tickwire_generator_step_seconds",
            "time to step the market and publish one batch",
            buckets=STEP_BUCKETS_S,
            registry=self.registry,
        )
        self.tick_to_send_seconds = Histogram(
            "tickwire_tick_to_send_seconds",
            "from a tick's event time to its send, the newest tick of each step",
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )

    def observe_step(self, step_s: float, latency_s: float | None = None) -> None:
        """Called by the generator once per step (never per message or per client)."""
        self.step_seconds.observe(step_s)
        if latency_s is not None:
            self.tick_to_send_seconds.observe(max(latency_s, 0.0))

    def render(self, accept: str | None = None) -> tuple[str, bytes]:
        """(content type, body) of `/metrics`: the Prometheus text format (0.0.4, what every
        scraper reads), or OpenMetrics when the request's Accept header asks for it."""
        encode, content_type = choose_encoder(accept or "")
        return content_type, encode(self.registry)

    def response(self, accept: str | None = None) -> Response:
        """The whole `/metrics` answer; `accept` is the request's Accept header."""
        content_type, body = self.render(accept)
        return 200, [("Content-Type", content_type), ("Cache-Control", "no-store")], body


class _Constant(Collector):
    def __init__(self, family: Metric) -> None:
        self._family = family

    def collect(self) -> Iterator[Metric]:
        yield self._family


# --------------------------------------------------------------------------- health


def livez() -> Response:
    """The process answers HTTP: alive. (A wedged event loop cannot answer at all.)"""
    return _text(200, "ok: alive")


def readyz(
    *,
    listening: bool,
    draining: bool,
    last_publish_s: float | None,
    now_s: float,
    cadence_ms: float,
    stale_after_s: float = 2.0,
    upstream: str | None = None,
    finished: bool = False,
) -> Response:
    """Ready: listening, not draining, and the market (or bus) published recently.

    `upstream`: why a gateway's source cannot serve (the bus is down), or None. `finished`: a
    replay without --loop has served its last record (clients keep the last state, no more come).

    `last_publish_s` and `now_s` are on the same clock (trio's); stale means no publish for
    `stale_after_s` or 100 cadences, whichever is longer.
    """
    if draining:
        return _text(503, "not ready: draining, the server is shutting down")
    if not listening:
        return _text(503, "not ready: not listening yet")
    if upstream is not None:
        return _text(503, f"not ready: {redact(upstream)}")  # unauthenticated: no passwords
    if finished:
        return _text(503, "not ready: replay finished, no more data (--loop starts over)")
    if last_publish_s is None:
        return _text(503, "not ready: the market has not produced yet")
    age_s = now_s - last_publish_s
    if age_s > max(stale_after_s, cadence_ms / 10):  # 100 cadences, in seconds
        return _text(503, f"not ready: no market data for {age_s:.1f} s")
    return _text(200, "ok: ready")


def _text(status: int, line: str) -> Response:
    body = (line + "\n").encode()
    return (
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ],
        body,
    )


__all__ = ["Metrics", "livez", "readyz"]
