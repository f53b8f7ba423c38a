"""`tickwire serve --universe crypto --bus URL --workers 2`: the producer and its gateways serve
the crypto pairs, and a client of a gateway reads each pair's size_unit and exact quantities."""

from __future__ import annotations

import re
import subprocess

from _redis import RedisServer, require_redis
from _support import serve_process, tickwire_cmd

require_redis()


def test_workers_serve_a_crypto_universe(redis_tcp: RedisServer) -> None:
    args = ("--universe", "crypto", "--bus", redis_tcp.url, "--workers", "2", "--drain-s", "0")
    with serve_process(*args) as (_, url):
        out = subprocess.run(
            tickwire_cmd("tail", "BTC-USD", "--url", url, "--count", "5"),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 5
    for line in lines:
        sizes = line.split()[5:8:2]  # bid_size, ask_size
        assert all(re.fullmatch(r"\d+\.\d{5}", s) for s in sizes), line
