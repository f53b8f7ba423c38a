"""Subscribe storms inside the request rate limit: requests are charged by the symbols they
name, on /v1 (sans-IO here, then against a real server on loopback)."""

from __future__ import annotations

import contextlib
import time

import orjson
import trio
from _rawws import OP_CLOSE, OP_TEXT, close_code, text_frame, welcome

from tests.feed.test_state import receive
from tickwire.feed.server.server import Server, ServerConfig
from tickwire.feed.v1 import state as st
from tickwire.simulators import Universe

N = 5000
UNIVERSE = Universe.synthetic(N, 0)
INDEX = {s: i for i, s in enumerate(UNIVERSE.symbols)}


def _req(op: str, symbols: list[str], rid: int) -> str:
    return orjson.dumps({"op": op, "symbols": symbols, "id": rid, "snapshot": False}).decode()


def _replies(actions: list[st.Action]) -> list[dict[str, object]]:
    return [orjson.loads(a.text) for a in actions if isinstance(a, st.Reply)]


def test_a_request_costs_one_plus_its_symbols_share() -> None:
    state = st.ConnectionState(INDEX, b"[]", st.Limits(), 0.0)
    names = list(INDEX)
    first = _replies(receive(state, _req("subscribe", names, 1), 0.0))
    assert first[0]["type"] == "ack"  # 51 of the 100 tokens
    second = _replies(receive(state, _req("unsubscribe", names, 2), 0.0))
    assert second[0]["type"] == "error" and second[0]["code"] == "rate_limited", second
    assert second[0]["id"] == 2
    # one token a 20 ms at 50 a second: the 51 are back in about a second
    assert _replies(receive(state, _req("unsubscribe", names, 3), 1.1))[0]["type"] == "ack"
    # small requests are still 1 each: 45 more pass at once
    acks = [_replies(receive(state, _req("subscribe", [names[0]], i), 1.1)) for i in range(45)]
    assert all(r[0]["type"] == "ack" for r in acks)


def test_the_largest_request_passes_on_a_full_bucket() -> None:
    limits = st.Limits(max_symbols=N)
    state = st.ConnectionState(INDEX, b"[]", limits, 0.0)
    big = [s for s in INDEX] * 3  # 15,000 names: capped at a burst's worth
    assert _replies(receive(state, _req("subscribe", big, 1), 0.0))[0]["type"] == "ack"
    star = st.ConnectionState(INDEX, b"[]", limits, 0.0)
    assert _replies(receive(star, _req("subscribe", ["*"], 1), 0.0))[0]["type"] == "ack"
    assert _replies(receive(star, _req("subscribe", ["*"], 2), 0.0))[0]["type"] == "error"


async def test_a_subscribe_storm_is_held_to_the_symbol_budget(nursery: trio.Nursery) -> None:
    """Before: 2 connections x 20 requests/s x 5000 symbols were all handled (the CPU
    saturated). Now each connection gets about one such request a second."""
    srv = Server(ServerConfig(port=0, universe=UNIVERSE, heartbeat_ms=0, cadence_ms=20))
    await nursery.start(srv.run)
    port = int(srv.url.rsplit(":", 1)[1].split("/")[0])
    names = list(INDEX)
    counts = {"ack": 0, "error": 0, "closed": 0}

    async def storm() -> None:
        reader = await welcome(port)

        async def read() -> None:  # while sending: data for 5000 symbols flows meanwhile
            got = 0
            while got < 40:
                op, payload = await reader.frame()
                if op == OP_CLOSE:  # rate_limited errors are strikes: 20 of them close (1008)
                    assert close_code(payload) == 1008
                    counts["closed"] += 1
                    return
                msg = orjson.loads(payload) if op == OP_TEXT else {}
                if msg.get("id") is not None and msg["type"] in ("ack", "error"):
                    counts[str(msg["type"])] += 1
                    got += 1

        async with trio.open_nursery() as both:
            both.start_soon(read)
            for i in range(40):  # 20 a second for 2 s: inside the 50 requests/s limit
                op = "subscribe" if i % 2 == 0 else "unsubscribe"
                with contextlib.suppress(trio.BrokenResourceError):  # closed for its strikes
                    await reader.stream.send_all(text_frame(orjson.loads(_req(op, names, i))))
                await trio.sleep(0.05)  # pacing the attack at 20 requests a second
        await reader.stream.aclose()

    t, t_wall = time.process_time(), trio.current_time()
    with trio.fail_after(30):
        async with trio.open_nursery() as storms:
            storms.start_soon(storm)
            storms.start_soon(storm)
    cpu, wall = time.process_time() - t, trio.current_time() - t_wall
    print(f"{counts}, CPU {cpu:.2f} s, {wall:.1f} s")
    # each connection: two at once (the burst), then one a second (51 of 50 tokens a second)
    assert counts["ack"] <= 2 * (2 + wall), counts
    assert counts["error"] >= 80 - 2 * (2 + wall) - 40 * counts["closed"], counts
