"""Injected faults, sans-IO: the spec's grammar, each fault's rate over a long seeded run, the
order and timing of held messages, stalls and closes (`feed/faults.py`)."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import pytest

from tickwire.feed.faults import FaultSpec, FaultSpecError, Injector, from_query, parse_spec

N = 100_000  # messages per long run: a rate of 0.05 is 5000 +- 69 (1 sigma)


def test_spec_grammar() -> None:
    spec = parse_spec(
        "drop:0.01,dup:1%,reorder:0.02,delay:50ms~20ms,stall:5s@60s,disconnect:30s,maintenance:1m"
    )
    assert spec == FaultSpec(0.01, 0.01, 0.02, 0.05, 0.02, 5.0, 60.0, 30.0, 60.0)
    assert parse_spec(spec.text()) == spec
    assert parse_spec(" DROP : 0.5 , ") == FaultSpec(drop=0.5)
    assert not parse_spec("drop:0").active and not parse_spec("").active


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("drop:2", "drop: rate must be from 0 to 1 (or 0% to 100%), got '2'"),
        ("drop:x", "drop: rate must be from 0 to 1"),
        ("dup:-1%", "dup: rate must be from 0 to 1"),
        ("lose:0.1", "unknown fault 'lose'; allowed: drop:RATE"),
        ("drop", "fault drop needs a value"),
        ("drop:0.1,drop:0.2", "fault drop given twice"),
        ("delay:abc", "delay: expected a duration such as 60s"),
        ("delay:10ms~20ms", "delay: jitter 20ms is more than the delay 10ms"),
        ("delay:5", "delay: expected a duration"),  # a unit is required
        ("stall:5s", "stall is stall:D@EVERY"),
        ("stall:60s@5s", "stall: 60s must be more than 0 and less than 5s"),
        ("disconnect:0s", "disconnect: must be more than 0"),
        ("maintenance:-1s", "maintenance: must be >= 0"),
    ],
)
def test_bad_specs_say_what_and_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(FaultSpecError) as info:
        parse_spec(text)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_query() -> None:
    assert from_query("streams=btcusdt@trade") is None
    assert from_query("seed=3") is None
    assert from_query("faults=drop:0.1&seed=7") == (FaultSpec(drop=0.1), 7)
    assert from_query("faults=dup:0.1") == (FaultSpec(dup=0.1), 0)
    with pytest.raises(FaultSpecError, match="seed must be an integer"):
        from_query("faults=drop:0.1&seed=-1")


def run(spec: FaultSpec, seed: int = 1, n: int = N) -> tuple[list[int], Injector]:
    """Messages 0..n-1 through an injector, one per ms; the numbers of what went out, in order."""
    inj = Injector(spec, seed, 0.0)
    out: list[bytes] = []
    for i in range(n):
        now = i / 1000
        got = inj.outgoing(b"%d;" % i, now)
        if got is not None:
            out.append(got)
        elif (late := inj.release(now)) is not None:
            out.append(late)
    if (rest := inj.release(math.inf)) is not None:
        out.append(rest)
    return [int(x) for x in b"".join(out).split(b";")[:-1]], inj


@pytest.mark.parametrize("kind", ["drop", "dup", "reorder"])
def test_rate_within_tolerance(kind: str) -> None:
    rate = 0.05
    sent, inj = run(FaultSpec(**{kind: rate}))
    counted = inj.counts[kind]
    assert abs(counted - rate * N) < 5 * math.sqrt(N * rate * (1 - rate)), counted
    assert sum(v for k, v in inj.counts.items() if k != kind) == 0
    if kind == "drop":  # what went out says the same as the counts
        assert len(sent) == N - counted and sent == sorted(sent)
    elif kind == "dup":
        assert len(sent) == N + counted and len(set(sent)) == N
    else:
        assert sorted(sent) == list(range(N))
        swaps = sum(1 for a, b in itertools.pairwise(sent) if b < a)
        assert swaps == counted


def test_same_seed_same_faults_other_seed_others() -> None:
    spec = FaultSpec(drop=0.02, dup=0.02, reorder=0.02, delay_s=0.005, jitter_s=0.004)
    a, _ = run(spec, seed=7, n=20_000)
    b, _ = run(spec, seed=7, n=20_000)
    c, _ = run(spec, seed=8, n=20_000)
    assert a == b and a != c


def test_delay_keeps_order_and_jitter_bounds() -> None:
    inj = Injector(FaultSpec(delay_s=0.05, jitter_s=0.02), 3, 0.0)
    dues = []
    for i in range(2000):
        assert inj.outgoing(b"%d;" % i, i * 0.1) is None  # every message waits
        dues.append(inj.due_at(i * 0.1) - i * 0.1)  # the one held (released before the next)
        assert inj.release(i * 0.1 + 0.029) is None  # never before delay - jitter
        assert inj.release(i * 0.1 + 0.0701) == b"%d;" % i  # always by delay + jitter
    assert inj.counts["delay"] == 2000
    assert 0.03 <= min(dues) < 0.032 and 0.068 < max(dues) <= 0.07
    assert abs(sum(dues) / len(dues) - 0.05) < 0.002
    sent, _ = run(FaultSpec(delay_s=0.05, jitter_s=0.05), n=5000)
    assert sent == list(range(5000))  # jitter never reorders: that is `reorder`'s job


def test_reorder_without_a_next_message_goes_out_by_its_deadline() -> None:
    inj = Injector(FaultSpec(reorder=1.0), 0, 0.0)
    assert inj.outgoing(b"1;", 0.0) is None
    assert inj.due_at(0.0) == pytest.approx(1.0)
    assert inj.release(0.5) is None and inj.release(1.0) == b"1;"


def test_stall_holds_everything_then_releases_in_order() -> None:
    inj = Injector(FaultSpec(stall_s=5.0, stall_every_s=60.0), 0, 0.0)
    assert inj.next_stall(0.0) == 60.0 and not inj.stalled(59.9)
    assert inj.outgoing(b"a", 59.9) == b"a"
    assert inj.stalled(60.0) and inj.stall_end(61.0) == 65.0
    assert inj.outgoing(b"b", 61.0) is None and inj.outgoing(b"c", 64.0) is None
    assert inj.release(64.9) is None and inj.due_at(62.0) == 65.0
    assert inj.release(65.0) == b"bc" and not inj.stalled(65.0)
    assert inj.next_stall(65.0) == 120.0 and inj.stalled(121.0)
    assert inj.counts["stall"] == 2


def test_disconnect_and_maintenance_deadlines() -> None:
    inj = Injector(parse_spec("disconnect:30s,maintenance:10s"), 0, 100.0)
    assert inj.due_at(100.0) == 110.0
    assert inj.close_due(109.9) is None and inj.close_due(110.0) == "maintenance"
    assert inj.close_due(130.0) == "disconnect"


def test_server_tally_and_connection_counts() -> None:
    tally: dict[str, int] = {}
    a = Injector(FaultSpec(drop=1.0), 0, 0.0, tally)
    b = Injector(FaultSpec(dup=1.0), 0, 0.0, tally)
    for i in range(3):
        a.outgoing(b"x", i)
        b.outgoing(b"x", i)
    assert tally == {"drop": 3, "dup": 3}
    assert a.statistics() == {"spec": "drop:1", "drop": 3}


def test_faults_module_is_sans_io() -> None:
    code = "import sys, tickwire.feed.faults, tickwire.feed.v1.faulty; print('trio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_operator_paths_longest_prefix_and_the_clients_own_wins() -> None:
    from tickwire.feed.server.faulting import FaultPolicy, parse_path_spec
    from tickwire.feed.ws.http import Accept, Refuse

    policy = FaultPolicy([parse_path_spec("/=drop:1"), parse_path_spec("/binance/=dup:1")], 3)

    def spec(path: str, query: str = "") -> object:
        got = policy.injector(Accept(b"", path, None, b"", query, path), 0.0)
        return got.spec if isinstance(got, Injector) else got

    assert spec("/binance/ws/btcusdt@trade") == FaultSpec(dup=1.0)
    assert spec("/binance") == FaultSpec(dup=1.0)
    assert spec("/binancex") == spec("/v1") == FaultSpec(drop=1.0)
    assert spec("/v1", "faults=reorder:0.5") == FaultSpec(reorder=0.5)
    assert spec("/v1", "faults=drop:0") is None  # asked for nothing: the plain connection
    refused = spec("/v1", "faults=drop:2")
    assert isinstance(refused, Refuse) and refused.status == 400
    assert refused.response.endswith(
        b"faults: drop: rate must be from 0 to 1 (or 0% to 100%), got '2'\n"
    )
    assert FaultPolicy().injector(Accept(b"", "/v1", None, b"", "", "/v1"), 0.0) is None
    for bad, message in [("v1=drop:1", "expected PATH=SPEC"), ("/v1=drop:x", "/v1: drop: rate")]:
        with pytest.raises(ValueError, match=message):
            parse_path_spec(bad)


def test_a_reorder_hold_that_ends_behind_delayed_messages_waits_for_them() -> None:
    inj = Injector(FaultSpec(reorder=1.0, delay_s=2.0), 0, 0.0)
    assert inj.outgoing(b"a", 0.0) is None  # held back for a reorder
    assert inj.outgoing(b"b", 0.5) is None  # b, then a: delayed to 2.5
    assert inj.outgoing(b"c", 0.6) is None  # held back for a reorder until 1.6
    assert inj.due_at(0.6) == pytest.approx(1.6)
    assert inj.release(1.6) is None  # c goes behind "ba": nothing is due before 2.5
    assert inj.due_at(1.6) == pytest.approx(2.5)  # not 1.6 again: no busy timer
    assert inj.release(2.5) == b"bac"


def test_serve_faults_flag_says_what_is_wrong_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tickwire.feed.cli.main import main

    with pytest.raises(SystemExit) as info:
        main(["serve", "--port", "0", "--faults", "/v1=drop:5"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert "--faults: /v1: drop: rate must be from 0 to 1 (or 0% to 100%), got '5'" in err
