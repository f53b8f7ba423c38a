"""/metrics in the Prometheus text format, and the /livez and /readyz answers."""

from __future__ import annotations

from typing import Any

import trio
from _support import metric_samples

from tickwire.feed import connect
from tickwire.feed.server.metrics import Metrics, livez, readyz
from tickwire.feed.server.server import Server


def scrape(metrics: Metrics) -> dict[str, Any]:
    """{sample name with sorted labels: value} of one render, parsed by prometheus_client."""
    content_type, body = metrics.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    out = metric_samples(body.decode())
    assert all(name.startswith("tickwire_") for name in out), list(out)
    return out


FULL = {
    "clients": 3,
    "connections_total": 10,
    "connections_refused": 2,
    "messages_sent": 1000,
    "ticks_sent": 5000,
    "bytes_sent": 123456,
    "ticks_conflated": 7,
    "ticks_published": 9000,
    "cadence_overruns": 1,
    "uptime_s": 12.5,
    "symbols": 53,
    "errors": {"bad_json": 4, "unknown_symbol": 1},
    "closes": {1000: 5, 1008: 1},
    "bus_lag_s": 0.004,
}


def test_every_family_with_operator_names() -> None:
    got = scrape(Metrics(lambda: FULL, version="1.2.3"))
    assert got["tickwire_clients"] == 3
    assert got["tickwire_connections_total"] == 10
    assert got["tickwire_connections_refused_total"] == 2
    assert got["tickwire_messages_sent_total"] == 1000
    assert got["tickwire_ticks_sent_total"] == 5000
    assert got["tickwire_bytes_sent_total"] == 123456
    assert got["tickwire_ticks_conflated_total"] == 7
    assert got["tickwire_ticks_published_total"] == 9000
    assert got["tickwire_cadence_overruns_total"] == 1
    assert got["tickwire_uptime_seconds"] == 12.5
    assert got["tickwire_symbols"] == 53
    assert got["tickwire_bus_lag_seconds"] == 0.004
    assert got["tickwire_errors_total{code=bad_json}"] == 4
    assert got["tickwire_errors_total{code=unknown_symbol}"] == 1
    assert got["tickwire_closes_total{code=1000}"] == 5
    assert got["tickwire_closes_total{code=1008}"] == 1
    assert got["tickwire_build_info{version=1.2.3}"] == 1
    assert got["tickwire_generator_step_seconds_count"] == 0
    assert got["tickwire_tick_to_send_seconds_count"] == 0


def test_missing_inputs_omit_their_family_instead_of_inventing_zero() -> None:
    got = scrape(Metrics(lambda: {"clients": 0, "bus_lag_s": None}))
    assert got["tickwire_clients"] == 0
    assert not any(
        k.startswith(("tickwire_bus_lag", "tickwire_bytes", "tickwire_errors")) for k in got
    )


def test_histograms_in_seconds() -> None:
    metrics = Metrics(dict)
    metrics.observe_step(0.0003, latency_s=0.0015)
    metrics.observe_step(0.002)
    metrics.observe_step(0.0001, latency_s=-0.001)  # clock skew: counted as 0, not negative
    got = scrape(metrics)
    assert got["tickwire_generator_step_seconds_count"] == 3
    assert abs(got["tickwire_generator_step_seconds_sum"] - 0.0024) < 1e-12
    assert got["tickwire_generator_step_seconds_bucket{le=0.0005}"] == 2
    assert got["tickwire_tick_to_send_seconds_count"] == 2
    assert got["tickwire_tick_to_send_seconds_bucket{le=0.0001}"] == 1
    assert got["tickwire_tick_to_send_seconds_bucket{le=0.002}"] == 2


def test_registries_are_private_to_each_server() -> None:
    a, b = Metrics(lambda: {"clients": 1}), Metrics(lambda: {"clients": 2})
    a.observe_step(0.001)
    assert scrape(a)["tickwire_clients"] == 1 and scrape(b)["tickwire_clients"] == 2
    assert scrape(b)["tickwire_generator_step_seconds_count"] == 0


def test_openmetrics_when_asked() -> None:
    content_type, body = Metrics(lambda: FULL).render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


def test_response_headers() -> None:
    status, headers, body = Metrics(lambda: FULL).response()
    assert status == 200 and b"tickwire_clients 3.0" in body
    assert dict(headers)["Cache-Control"] == "no-store"


async def test_counters_move_as_a_client_receives_data(server: Server) -> None:
    """Read straight from a live server's statistics(): what the HTTP front will expose."""
    metrics = Metrics(server.statistics)
    before = scrape(metrics)
    with trio.fail_after(20):
        async with connect(server.url) as feed:
            await feed.subscribe(["*"])
            seen = 0
            async for _ in feed:
                seen += 1
                if seen >= 5:
                    break
            during = scrape(metrics)
    assert during["tickwire_clients"] == 1
    assert during["tickwire_connections_total"] == before["tickwire_connections_total"] + 1
    assert during["tickwire_messages_sent_total"] > before["tickwire_messages_sent_total"]
    assert during["tickwire_ticks_sent_total"] > before["tickwire_ticks_sent_total"]
    assert during["tickwire_ticks_published_total"] > 0


# --------------------------------------------------------------------------- health


def test_livez() -> None:
    status, headers, body = livez()
    assert (status, body) == (200, b"ok: alive\n")
    assert dict(headers)["Content-Type"] == "text/plain; charset=utf-8"


def ready(**kw: Any) -> tuple[int, str]:
    args = {"listening": True, "draining": False, "last_publish_s": 99.9, "now_s": 100.0}
    args.update(kw)
    status, _, body = readyz(cadence_ms=1.0, **args)
    assert body.endswith(b"\n") and body.count(b"\n") == 1  # one line
    return status, body.decode().strip()


def test_readyz() -> None:
    assert ready() == (200, "ok: ready")
    assert ready(draining=True) == (503, "not ready: draining, the server is shutting down")
    assert ready(listening=False) == (503, "not ready: not listening yet")
    assert ready(last_publish_s=None) == (503, "not ready: the market has not produced yet")
    assert ready(last_publish_s=95.0) == (503, "not ready: no market data for 5.0 s")
    assert ready(last_publish_s=98.5)[0] == 200  # within the 2 s floor


def test_readyz_after_a_replay_finished() -> None:
    # Publishing empty steps keeps `last_publish_s` fresh: the finished flag must win over it.
    assert ready(finished=True) == (
        503,
        "not ready: replay finished, no more data (--loop starts over)",
    )
    assert ready(finished=True, draining=True)[1].startswith("not ready: draining")
