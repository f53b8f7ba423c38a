"""The one backoff schedule: first wait, doubling, capped, reset after a success."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tickwire.feed.backoff import Backoff


def test_doubles_up_to_the_cap_and_resets() -> None:
    b = Backoff(0.5, 10.0)
    assert [b.next() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    b.reset()
    assert b.next() == 0.5


def test_delay_is_pure_in_the_attempt() -> None:
    b = Backoff(0.1, 10.0)
    assert [b.delay(n) for n in (1, 2, 3)] == [0.1, 0.2, 0.4]
    assert b.failures == 0


def test_a_very_long_outage_stays_at_the_cap() -> None:
    # 2.0 ** 1100 overflows a float; the schedule must not raise after hours of retries
    assert Backoff(0.1, 10.0).delay(5000) == 10.0


@given(
    st.floats(min_value=0, max_value=1e6),
    st.floats(min_value=0, max_value=1e6),
    st.integers(min_value=1, max_value=10**6),
)
def test_never_above_the_cap_and_never_shrinking(first: float, most: float, n: int) -> None:
    b = Backoff(first, most)
    assert b.delay(n) <= most
    assert b.delay(n) <= b.delay(n + 1)
