"""The bus's Redis side shared by producer and reader: the coredis client, limits, failures."""

from __future__ import annotations

import logging

import trio

from tickwire.feed.urls import redact

try:
    import coredis
    from coredis.exceptions import RedisError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the Redis bus needs coredis: pip install 'tickwire[redis]'") from exc

log = logging.getLogger("tickwire.bus")

DEFAULT_NAMESPACE = "tickwire"
# One stream by default: every gateway reads every shard from one single-threaded Redis, so
# more streams buy nothing yet, and Redis < 7.2 answers a blocked XREAD over several streams with
# one of them only: a flush spread over shards then costs a gateway a second round trip (measured
# here: ~1-2 ms more p50 through the bus at N=10). `shards` stays for a layout that splits them.
DEFAULT_SHARDS = 1
DEFAULT_MAXLEN = 10_000  # entries kept per shard (~10 s of 1 ms flushes): a gateway's slack
COMMAND_TIMEOUT_S = 5.0  # a Redis that answers nothing for this long is down
BACKOFF_S = (0.05, 2.0)  # reconnect backoff: first and longest wait
# Records a producer holds for a writer that is behind; beyond, it drops (readers see a gap).
# 32 MB: one transaction well inside the timeout, and ~1 s of 5,000 symbols at the open, so a
# producer the OS left waiting for a few hundred ms on a busy machine catches up.
MAX_PENDING_RECORDS = 500_000
READ_COUNT = 1000  # entries per stream per XREAD
BLOCK_MS = 100  # XREAD BLOCK: how long a read waits in Redis before a reader checks the clock

Failure = (RedisError, OSError, trio.TooSlowError)


def client_for(url: str) -> coredis.Redis[bytes]:
    """A coredis client for `redis://host:port/db` or `unix:///path.sock` (bytes replies)."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(
            f"--bus must be redis://HOST:PORT/DB or unix:///PATH.sock, got {redact(url)!r}"
        )
    client: coredis.Redis[bytes] = coredis.Redis.from_url(url, decode_responses=False)
    return client


def describe_failure(exc: BaseException) -> str:
    """One short line: the innermost cause (a failed pipeline's message lists every command)."""
    seen = {id(exc)}
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))  # chains can loop
        exc = inner
    if isinstance(exc, trio.TooSlowError):
        return "timed out: no answer in time (Redis, or this machine, too busy)"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
