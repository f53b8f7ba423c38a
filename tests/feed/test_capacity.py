"""The start-up capacity check: the decision with a scripted measure, the real `tickwire serve`."""

from __future__ import annotations

import os
import subprocess
from argparse import Namespace
from collections.abc import Iterator

import pytest
from _support import serve_process, tickwire_cmd

from tickwire.feed.server import capacity as cap
from tickwire.feed.server.server import ServerConfig
from tickwire.simulators import Market, Universe
from tickwire.simulators.errors import UserError


class _Scripted:
    """Stands in for `Market.measure_load`: the next figures, and who asked for what."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, sample: list[float], full: list[float]):
        self.sample: Iterator[float] = iter(sample)
        self.full: Iterator[float] = iter(full)
        self.calls: list[str] = []

        def measure_load(market: Market, sim_s: float = 0.2, *, symbols: int | None = None):
            self.calls.append("sample" if symbols is not None else "full")
            return next(self.sample if symbols is not None else self.full)

        monkeypatch.setattr(Market, "measure_load", measure_load)


def _market(n: int) -> Market:
    return Market(Universe.synthetic(n, 0))


def test_one_slow_sample_does_not_refuse_a_universe_that_fits(monkeypatch):
    script = _Scripted(monkeypatch, [0.2, 0.2, 0.2], [0.9, 0.24, 0.3])  # another process ran once
    c = cap.measure(_market(3000))
    assert (c.load, c.estimated) == (0.24, False)
    assert script.calls == ["sample"] * 3 + ["full"] * 2  # stops at the first measure that fits
    assert cap.refusal(c) is None


def test_a_big_universe_over_the_limit_is_refused_from_its_sample_alone(monkeypatch):
    script = _Scripted(monkeypatch, [2.4, 2.1, 2.2], [])  # a full measure would cost ~1 s
    c = cap.measure(_market(5000))
    assert (c.load, c.estimated) == (2.1, True)
    assert script.calls == ["sample"] * 3
    reason = cap.refusal(c)
    assert reason is not None and "\n" not in reason
    assert reason.startswith("5,000 symbols at --activity 1 make ~")
    assert "need at least 2.10 CPU s per second" in reason
    assert "at most about 1,100 such symbols" in reason  # 5,000 x 0.5 / 2.1, two figures
    assert "fewer --symbols or a lower --activity" in reason
    assert "producer" not in reason  # generation alone would not fit in one producer either
    assert reason.endswith("(--no-capacity-check starts anyway)")


def test_a_sample_near_the_limit_gets_a_full_measure(monkeypatch):
    script = _Scripted(monkeypatch, [0.6, 0.55, 0.7], [0.45])  # a busy machine reads high
    c = cap.measure(_market(3000))
    assert (c.load, c.estimated) == (0.45, False)
    assert script.calls == ["sample"] * 3 + ["full"]
    assert cap.refusal(c) is None


def test_a_full_measure_far_over_the_limit_is_not_repeated(monkeypatch):
    script = _Scripted(monkeypatch, [0.9] * 3, [1.2])
    assert cap.measure(_market(3000)).load == 1.2
    assert script.calls == ["sample"] * 3 + ["full"]


def test_a_universe_refused_by_its_full_measure_says_what_fits(monkeypatch):
    _Scripted(monkeypatch, [0.4] * 3, [0.7, 0.8, 0.75])  # the sample reads low, as it does
    c = cap.measure(_market(3000))
    assert (c.load, c.estimated) == (0.7, False)
    reason = cap.refusal(c)
    assert reason is not None
    assert "need 0.70 CPU s per second" in reason and "at least" not in reason
    assert "sustains about 2,100 such symbols" in reason
    assert "the Redis bus with a producer" in reason  # 0.7 of a core fits a producer


def test_a_small_universe_is_measured_whole(monkeypatch):
    script = _Scripted(monkeypatch, [], [0.01])
    assert cap.refusal(cap.measure(Market(Universe.default()))) is None
    assert script.calls == ["full"]


def test_one_slow_measure_of_a_small_universe_does_not_refuse_it(monkeypatch):
    # Seen on a busy machine: the default universe with books at --activity 5 (~0.15 CPU s a
    # second) measured 1.15 once, and one measure far over the limit refused it.
    script = _Scripted(monkeypatch, [], [1.15, 0.15])
    c = cap.measure(Market(Universe.default()))
    assert (c.load, c.estimated) == (0.15, False)
    assert script.calls == ["full"] * 2
    assert cap.refusal(c) is None


def test_sustainable_symbols_round_down_to_two_figures():
    c = cap.Capacity(65536, 1.0, 5.7e6, 2.9, estimated=False)
    assert c.sustainable_symbols() == 11_000
    assert cap.Capacity(80, 1.0, 7e3, 1.0, estimated=False).sustainable_symbols() == 40


def test_the_flag_and_a_replay_skip_the_measure(monkeypatch):
    script = _Scripted(monkeypatch, [], [])  # any measure would raise StopIteration
    config = ServerConfig(universe=Universe.synthetic(65536, 0))
    cap.check(Namespace(no_capacity_check=True), config, replay=False)
    plain = Namespace(no_capacity_check=False)
    cap.check(plain, config, replay=True)
    assert script.calls == []
    with pytest.raises(RuntimeError, match="StopIteration"):
        cap.check(plain, config, replay=False)  # without either, it does measure


def test_the_flag_is_a_serve_flag_and_a_setting():
    help_text = subprocess.run(
        tickwire_cmd("serve", "--help"), capture_output=True, text=True, timeout=30
    ).stdout
    assert "--no-capacity-check" in help_text
    shown = subprocess.run(
        tickwire_cmd("serve", "--print-config"),
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "TICKWIRE_NO_CAPACITY_CHECK": "1"},
    ).stdout
    assert "no-capacity-check = true  # env TICKWIRE_NO_CAPACITY_CHECK" in shown, shown


def test_check_raises_a_user_error(monkeypatch):
    _Scripted(monkeypatch, [3.0] * 3, [])
    args = Namespace(no_capacity_check=False)
    with pytest.raises(UserError, match=r"^65,536 symbols at --activity 1 make"):
        cap.check(args, ServerConfig(universe=Universe.synthetic(65536, 0)), replay=False)


# ----------------------------------------------------------------------------- the real command


def test_serve_refuses_65536_symbols_in_one_line_with_exit_2():
    # ~3 CPU s per second here at the open, six times the limit: no machine this century fits
    out = subprocess.run(
        tickwire_cmd("serve", "--port", "0", "--symbols", "65536"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2, out.stderr
    assert out.stdout == ""
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert out.stderr.startswith("tickwire: error: 65,536 symbols at --activity 1 make ~")
    assert "use fewer --symbols or a lower --activity" in out.stderr


def test_serve_starts_the_default_universe():
    with serve_process() as (proc, url):
        assert url.startswith("ws://127.0.0.1:")
        assert proc.poll() is None


def test_a_producer_may_use_most_of_a_core(monkeypatch):
    _Scripted(monkeypatch, [0.6] * 3, [0.7])
    args = Namespace(no_capacity_check=False)
    config = ServerConfig(universe=Universe.synthetic(3000, 0))
    cap.check(args, config, replay=False, limit=cap.PRODUCER_LIMIT)  # 0.7 of a core: fits
    _Scripted(monkeypatch, [0.6] * 3, [0.7] * 3)
    with pytest.raises(UserError, match=r"over the 0\.5 a server can spare"):
        cap.check(args, config, replay=False)
