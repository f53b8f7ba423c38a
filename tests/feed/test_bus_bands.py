"""A scenario's LULD bands cross the bus: Alpaca `lulds` clients of a gateway get the bands the
producer's own clients get, in the same order; a gateway started while bands stand learns them
(`{ns}:bands`), and the hash is empty once the bands end. Real redis-server and sockets, real
time: the scenario's bands move within its first seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import trio
from _redis import RedisServer, require_redis
from _support import serve_config
from trio_websocket import open_websocket_url

require_redis()

from tickwire.feed.bus import bands as bb  # noqa: E402
from tickwire.feed.bus.api import BusReader, client_for  # noqa: E402
from tickwire.feed.server.gateway import gateway_server, producer_server  # noqa: E402
from tickwire.simulators.scenario import BAND_DTYPE  # noqa: E402

TIMEOUT_S = 60
NS = "bands"
# AAPL's bands from 1 s to 4 s; the jump at 2 s moves them (event time from the start).
SCENARIO = """
[[event]]
kind = "luld"
symbol = "AAPL"
band = "5%"
window = "1s"
pause = "1s"
at = "1s"
duration = "3s"
[[event]]
kind = "jump"
symbol = "AAPL"
at = "2s"
move = "3%"
"""


async def _lulds(url: str, key: str, until: Any, out: list[dict[str, Any]]) -> None:
    """Alpaca `lulds` messages of AAPL (from the subscribe on) until `until()` holds."""
    async with open_websocket_url(url.removesuffix("/v1") + "/alpaca/v2/iex") as ws:
        await ws.send_message(orjson.dumps({"action": "auth", "key": key, "secret": "s"}))
        await ws.send_message(orjson.dumps({"action": "subscribe", "lulds": ["AAPL"]}))
        while not until():
            with trio.move_on_after(0.05):
                for msg in orjson.loads(await ws.get_message()):
                    if msg["T"] == "l":
                        out.append(msg)


async def test_bands_cross_the_bus_and_a_late_gateway_learns_them(
    redis: RedisServer, tmp_path: Path
) -> None:
    path = tmp_path / "bands.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    server, producer = producer_server(serve_config("--scenario", str(path)), None, redis.url, NS)
    start_ns = server.source.start_ns  # type: ignore[attr-defined]
    own: list[dict[str, Any]] = []
    via_bus: list[dict[str, Any]] = []
    late: list[dict[str, Any]] = []
    with trio.fail_after(TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(producer.run)
            await nursery.start(server.run)
            async with BusReader(redis.url, namespace=NS) as reader, trio.open_nursery() as gws:
                gateway = gateway_server(serve_config(), reader, "gw-1")
                await gws.start(gateway.run)
                assert server.now_ns() < start_ns + 900_000_000, "started too late to test"

                def over() -> bool:
                    return server.now_ns() > start_ns + 4_500_000_000

                async with trio.open_nursery() as clients:
                    clients.start_soon(_lulds, server.url, "own", over, own)
                    clients.start_soon(_lulds, gateway.url, "bus", over, via_bus)
                    while server.now_ns() < start_ns + 3_000_000_000:
                        await trio.sleep(0.01)  # the event time to start at: no event to wait on
                    async with client_for(redis.url) as client:
                        standing = bb.decode_bands_now(await client.hgetall(bb.bands_key(NS)))
                    async with BusReader(redis.url, namespace=NS) as second:
                        gw2 = gateway_server(serve_config(), second, "gw-2")
                        async with trio.open_nursery() as gw2s:
                            await gw2s.start(gw2.run)
                            await _lulds(gw2.url, "late", lambda: len(late) > 0 or over(), late)
                            gw2s.cancel_scope.cancel()
                gws.cancel_scope.cancel()
            async with client_for(redis.url) as client:
                after = await client.hgetall(bb.bands_key(NS))
            nursery.cancel_scope.cancel()
    assert [m["i"] for m in own][:1] == ["A"] and len(own) >= 2  # set, then moved by the jump
    assert via_bus == own  # the same messages, in the same order
    # the late gateway's subscribe: AAPL's bands as they stood, from the hash
    assert len(standing) == 1 and standing.dtype == BAND_DTYPE
    # (they stood at 3 s; a move may come before its subscribe: then those)
    seen = [(m["u"], m["d"]) for m in own]
    then = (float(standing["up"][0]), float(standing["down"][0]))
    assert late and then in seen and seen.index((late[0]["u"], late[0]["d"])) >= seen.index(then)
    assert not after  # the bands ended: nothing stands


def test_a_band_blob_round_trips_and_a_gap_clears_what_is_gone() -> None:
    rec = np.zeros(3, BAND_DTYPE)
    rec["sym"], rec["ts"], rec["up"], rec["down"], rec["indicator"] = [3, 9, 4], 5, 2.0, 1.0, 65
    at, got = bb.decode_bands(bb.encode_bands([(4, rec[:1]), (7, rec[1:])]))
    assert at.tolist() == [4, 7, 7] and got.tobytes() == rec.tobytes()
    seen = bb.BandsSeen()
    seen.note(rec)
    out = seen.after_gap(rec[1:2], 99)  # only symbol 9 still has bands
    assert out["sym"].tolist() == [9, 3, 4] and out["indicator"].tolist() == [65, 0, 0]
    assert (out["ts"][1:] == 99).all() and np.isnan(out["up"][1:]).all()
    assert seen.symbols == {9}


async def test_a_new_producer_starts_the_bands_hash_from_its_own(
    redis: RedisServer, tmp_path: Path
) -> None:
    """A producer that takes the lease writes its own bands (none here) over the hash: a
    gateway that starts then must not learn the old producer's bands."""
    path = tmp_path / "bands.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    first, _ = producer_server(serve_config("--scenario", str(path)), None, redis.url, NS)
    second, _ = producer_server(serve_config(), None, redis.url, NS)

    async def run(server: Any, *, task_status: Any) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.sinks[1].producer.run)
            await nursery.start(server.run_source)
            task_status.started()

    with trio.fail_after(TIMEOUT_S):
        async with client_for(redis.url) as client:
            async with trio.open_nursery() as old:
                await old.start(run, first)
                while not (standing := await client.hgetall(bb.bands_key(NS))):
                    await trio.sleep(0.05)  # the bands start at 1 s: no event to wait on
                old.cancel_scope.cancel()  # a clean stop: it releases the lease
            async with trio.open_nursery() as new:
                await new.start(run, second)  # started: its first write under the lease is done
                after = await client.hgetall(bb.bands_key(NS))
                new.cancel_scope.cancel()
    assert list(standing) == [b"0"]  # AAPL's bands, by the first producer
    assert after == {}
