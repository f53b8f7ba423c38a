"""Making a chunk in slices: the next chunk is made ahead, a slice per step, before it is due.

A chunk is made in one go by default, and whichever `Market.step` first needs it pays for all of
it: with order books a 0.2 s chunk of the default universe costs ~4 ms, a stall of every client
of a live server five times a second. The making is written as a generator (`Slices`) that
yields between its stages, each about a millisecond; the market runs one stage per step while
the chunk before is being released, and finishes what is left when the chunk is due. The work,
and the random draws, are the same and in the same order whoever runs them and whenever: the
bytes a seed gives never depend on the steps. Imports nothing.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TypeVar

T = TypeVar("T")

Slices = Generator[None, None, T]  # yields between stages; returns what is made


def finish(making: Slices[T]) -> T:
    """Run `making` to its end: what it makes."""
    while True:
        try:
            next(making)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


def advance(making: Slices[T]) -> tuple[bool, T | None]:
    """Run one stage of `making`: (True, what it made) if that was its last, else (False, None)."""
    try:
        next(making)
    except StopIteration as done:
        return True, done.value
    return False, None
