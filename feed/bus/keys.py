"""The bus's Redis keys, one namespace's each (`codec` names them too)."""

from __future__ import annotations


def ticks_key(namespace: str, shard: int) -> str:
    return f"{namespace}:ticks:{shard}"


def latest_key(namespace: str) -> str:
    return f"{namespace}:latest"


def head_key(namespace: str) -> str:
    """The last flush number written: where a reader starts counting."""
    return f"{namespace}:head"


def offset_key(namespace: str) -> str:
    """The producer's stream offset of the next record (after `head`): a gateway's hub start."""
    return f"{namespace}:offset"


def meta_key(namespace: str) -> str:
    return f"{namespace}:meta"


def halted_key(namespace: str) -> str:
    """Each symbol halted now (a market playing a scenario): where a gateway starts from."""
    return f"{namespace}:halted"


def scenarios_key(namespace: str) -> str:
    """The market scenarios playing now, a JSON list of names: where a gateway starts from."""
    return f"{namespace}:scenarios"


def watched_key(namespace: str) -> str:
    """Set (with a short expiry, refreshed) by every gateway that has subscribers: while it
    is absent, nobody watches and the producer steps its market rarely, like an idle server."""
    return f"{namespace}:watched"


def bookwant_key(namespace: str) -> str:
    """Set by a gateway that needs every book whole (it starts, or lost updates): the
    producer's next write carries them (`B`) and deletes it."""
    return f"{namespace}:bookwant"


def bookswatched_key(namespace: str) -> str:
    """Set (expiring, refreshed) by every gateway that mirrors books: else no level updates."""
    return f"{namespace}:bookswatched"


def lease_key(namespace: str) -> str:
    """The active producer's lease: its token, with a short expiry it keeps renewing."""
    return f"{namespace}:lease"


__all__ = [
    "bookswatched_key",
    "bookwant_key",
    "halted_key",
    "head_key",
    "latest_key",
    "lease_key",
    "meta_key",
    "offset_key",
    "scenarios_key",
    "ticks_key",
    "watched_key",
]
