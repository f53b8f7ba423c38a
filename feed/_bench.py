"""`tickwire bench`: speed figures, each beside a baseline measured in the same run, as a ratio.

The machine may be shared and noisy, so one absolute number means little: every row runs its
baseline right next to it. Rows: the generator vs a per-symbol Python loop; encode/decode of a
50-tick batch vs json.dumps/json.loads; fan-out of the real `tickwire serve` process vs a plain
trio-websocket server (send_message per client) and the websockets library's broadcast, with load
clients in other processes; memory per idle connection; the machine's raw send() rate.
The baselines and the load client live in `_bench_peers.py`, run as their own processes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

from tickwire.simulators import TICK_DTYPE, Market, Universe
from tickwire.simulators.errors import UserError

from . import protocol as p

Row = dict[str, Any]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    if "bench" in sub.choices:
        return
    ap = sub.add_parser(
        "bench",
        help="speed figures, each beside a baseline from the same run",
        description="Measure tickwire against baselines in the same run and print ratios: "
        "generator, encode/decode, fan-out to N clients (server CPU per message, latency), "
        "memory per connection, and the machine's raw send() rate. Needs the bench extra "
        "(pip install 'tickwire[bench]') for the load clients and peer servers.",
    )
    ap.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds (smoke test)")
    ap.add_argument("--full", action="store_true", help="add N=500 and 1000 idle connections")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    ap.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import picows  # noqa: F401
        import websockets  # noqa: F401
    except ImportError:
        raise UserError("the bench needs its load clients: pip install 'tickwire[bench]'") from None
    quick = args.quick
    steps: list[tuple[str, Callable[[], list[Row]]]] = [
        ("generator", lambda: generator_rows(quick)),
        ("encode/decode", codec_rows),
        ("physical limit", lambda: physical_rows(quick)),
        ("fan-out", lambda: fanout_rows(quick, args.full)),
        ("memory", lambda: memory_rows(quick, args.full)),
    ]
    rows: list[Row] = []
    from rich.progress import Progress

    with Progress(transient=True, disable=args.json or not sys.stderr.isatty()) as bar:
        task = bar.add_task("bench", total=len(steps))
        for name, step in steps:
            bar.update(task, description=name)
            rows.extend(step())
            bar.advance(task)
    _link_physical(rows)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        _print_table(rows)
    return 0


def _row(name: str, value: float, unit: str, baseline: str, base: float, higher: bool) -> Row:
    ratio = value / base if base else float("nan")
    return {
        "name": name,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_value": base,
        "ratio": ratio,
        "better": "higher" if higher else "lower",
    }


def _print_table(rows: list[Row]) -> None:
    print(f"{'row':44} {'tickwire':>12} {'baseline':>30} {'ratio':>8}")
    for r in rows:
        base = f"{r['baseline']} {_fmt(r['baseline_value'])}" if r["baseline"] else ""
        ratio = f"{r['ratio']:.2f}x" if r["baseline"] else ""
        print(f"{r['name']:44} {_fmt(r['value']):>9} {r['unit']:<3}{base:>29} {ratio:>8}")
    print("ratio = tickwire / baseline; 'better' is higher for rates, lower for costs (--json).")


def _fmt(v: float) -> str:
    if v != v:
        return "n/a"
    if abs(v) >= 1e6:
        return f"{v / 1e6:.2f}M"
    if abs(v) >= 1e4:
        return f"{v / 1e3:.1f}k"
    return f"{v:.3g}"


# --------------------------------------------------------------------------- generator


def generator_rows(quick: bool) -> list[Row]:
    rows = []
    for n in (500,) if quick else (500, 5000):
        sim_s = 0.3 if quick else 3.0
        universe = Universe.synthetic(n, seed=1)
        market = Market(universe, seed=1, start_ns=0)
        t0, ticks = time.perf_counter(), 0
        for k in range(1, int(sim_s * 1000) + 1):
            ticks += len(market.step(k * 1_000_000))
        elapsed = time.perf_counter() - t0
        naive = _naive_generator(universe, 0.1 if quick else 1.0)
        label = f"generator, {n} symbols, 1 ms steps"
        rows.append(_row(label, ticks / elapsed, "t/s", "python loop", naive, True))
        rows.append(
            _row("  x real time (the open: busiest)", sim_s / elapsed, "x", "", float("nan"), True)
        )
    return rows


def _naive_generator(universe: Universe, sim_s: float) -> float:
    """A straightforward per-symbol Python loop making comparable records (the baseline)."""
    n = len(universe)
    rng = random.Random(1)
    price = universe.price.tolist()
    tick = universe.tick_size.tolist()
    seq = [0] * n
    rate = [28.0 * a * 0.001 for a in universe.activity.tolist()]
    out_total, t0 = 0, time.perf_counter()
    for step in range(int(sim_s * 1000)):
        rows = []
        for i in range(n):
            if rng.random() < rate[i]:
                price[i] *= 1 + rng.gauss(0, 1e-4)
                bid = round(price[i] / tick[i]) * tick[i]
                seq[i] += 1
                rows.append(
                    (step * 1_000_000, seq[i], bid, bid + tick[i], bid, 0, i, 0, 100, 100, 100)
                )
        out_total += len(np.array(rows, dtype=TICK_DTYPE)) if rows else 0
    return out_total / (time.perf_counter() - t0)


# --------------------------------------------------------------------------- codec


def codec_rows() -> list[Row]:
    universe = Universe.default()
    market = Market(universe, seed=2, start_ns=0)
    recs = market.step(2_000_000_000)[:50].copy()
    names = np.array(universe.symbols, dtype=object)
    dicts = p.tick_dicts(recs, names)
    text = json.dumps({"type": "ticks", "seq": 1, "ticks": dicts})
    body = p.ticks_text("ticks", 1, p.ticks_body(recs, names))
    frame = p.encode_binary(p.BinaryType.TICKS, 1, recs)
    index = {s: i for i, s in enumerate(universe.symbols)}
    base_enc = _us(lambda: json.dumps({"type": "ticks", "seq": 1, "ticks": dicts}))
    base_dec = _us(lambda: json.loads(text))
    return [
        _row(
            "encode 50 ticks, JSON",
            _us(lambda: p.ticks_text("ticks", 1, p.ticks_body(recs, names))),
            "us",
            "json.dumps",
            base_enc,
            False,
        ),
        _row(
            "encode 50 ticks, binary",
            _us(lambda: p.encode_binary(p.BinaryType.TICKS, 1, recs)),
            "us",
            "json.dumps",
            base_enc,
            False,
        ),
        _row(
            "decode 50 ticks, JSON (to records)",
            _us(lambda: p.records_from_json(orjson.loads(body)["ticks"], index)),
            "us",
            "json.loads",
            base_dec,
            False,
        ),
        _row(
            "decode 50 ticks, binary",
            _us(lambda: p.decode_binary(frame)),
            "us",
            "json.loads",
            base_dec,
            False,
        ),
    ]


def _us(fn: Callable[[], object], reps: int = 2000) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t0) / reps * 1e6)
    return best


# --------------------------------------------------------------------------- processes


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _start_server(kind: str) -> tuple[subprocess.Popen[str], str]:
    if kind == "tickwire":
        proc = _spawn("tickwire.feed.cli", "serve", "--port", "0", "--log-level", "warning")
        line = proc.stdout.readline() if proc.stdout else ""
        return proc, line.split(" on ", 1)[1].split()[0]
    proc = _spawn("tickwire.feed._bench_peers", kind)
    line = proc.stdout.readline() if proc.stdout else ""
    return proc, line.strip()


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()


def _load(
    url: str, n: int, secs: float, binary: bool, server_pid: int
) -> tuple[dict[str, Any], float]:
    """n load connections over up to 2 client processes: totals, and server CPU us/message."""
    procs = []
    per = [n // 2 + n % 2, n // 2] if n > 1 else [1]
    for k in per:
        if k:
            args = ("client", url, str(k), str(secs), "1" if binary else "0", "*")
            procs.append(_spawn("tickwire.feed._bench_peers", *args))
    for pr in procs:  # every client connected and counting
        assert pr.stdout is not None and pr.stdout.readline().strip() == "go"
    c0, w0 = _cpu_s(server_pid), time.perf_counter()
    outs = [pr.communicate(timeout=secs + 60)[0] for pr in procs]
    cpu_rate = (_cpu_s(server_pid) - c0) / (time.perf_counter() - w0)
    results = [json.loads(out.strip().splitlines()[-1]) for out in outs]
    total = {
        "msgs": sum(r["msgs"] for r in results),
        "ticks": sum(r["ticks"] for r in results),
        "bytes": sum(r["bytes"] for r in results),
        "secs": max(r["secs"] for r in results),
    }
    lat = sorted(x for r in results for x in r["lat"])
    for q, name in ((0.5, "p50"), (0.99, "p99"), (0.999, "p999")):
        total[name] = lat[min(len(lat) - 1, int(q * len(lat)))] / 1e6 if lat else float("nan")
    msg_rate = total["msgs"] / total["secs"] if total["secs"] else 0.0
    return total, cpu_rate / msg_rate * 1e6 if msg_rate else float("nan")


def fanout_rows(quick: bool, full: bool) -> list[Row]:
    secs = 0.7 if quick else 5.0
    ns = (2,) if quick else ((1, 10, 100, 500) if full else (1, 10, 100))
    rows: list[Row] = []
    for binary in (False,) if quick else (False, True):
        enc = "binary" if binary else "JSON"
        for n in ns:
            res = {}
            for kind in ("tickwire", "plain", "peer"):
                if binary and kind != "tickwire":
                    continue
                proc, url = _start_server(kind)
                try:
                    t, t["cpu_us_msg"] = _load(url, n, secs, binary, proc.pid)
                finally:
                    _stop(proc)
                res[kind] = t
            tw = res["tickwire"]
            base_name = "plain" if "plain" in res else ""
            base = res.get("plain", {})
            label = f"fan-out N={n} '*', {enc}"
            rows.append(
                _row(
                    f"{label}: ticks/s",
                    tw["ticks"] / tw["secs"],
                    "t/s",
                    base_name,
                    base.get("ticks", 0) / base.get("secs", 1) if base else float("nan"),
                    True,
                )
            )
            rows.append(
                _row(
                    f"{label}: msgs/s",
                    tw["msgs"] / tw["secs"],
                    "m/s",
                    base_name,
                    base.get("msgs", 0) / base.get("secs", 1) if base else float("nan"),
                    True,
                )
            )
            rows.append(
                _row(
                    f"{label}: server CPU/msg",
                    tw["cpu_us_msg"],
                    "us",
                    base_name,
                    base.get("cpu_us_msg", float("nan")),
                    False,
                )
            )
            for q in ("p50", "p99", "p999"):
                rows.append(
                    _row(
                        f"{label}: latency {q}",
                        tw[q],
                        "ms",
                        base_name,
                        base.get(q, float("nan")),
                        False,
                    )
                )
            if "peer" in res:
                rows.append(
                    _row(
                        f"{label}: server CPU/msg vs broadcast",
                        tw["cpu_us_msg"],
                        "us",
                        "ws.broadcast",
                        res["peer"]["cpu_us_msg"],
                        False,
                    )
                )
    return rows


def memory_rows(quick: bool, full: bool) -> list[Row]:
    n = 20 if quick else (1000 if full else 300)
    out = {}
    for kind in ("tickwire", "plain"):
        proc, url = _start_server(kind)
        try:
            time.sleep(0.5)  # let it settle before the baseline RSS (a measurement, not a sync)
            r0 = _rss_kib(proc.pid)
            client = _spawn("tickwire.feed._bench_peers", "idle", url, str(n))
            (client.stdout.readline() if client.stdout else "")  # "ready": all connected
            out[kind] = (_rss_kib(proc.pid) - r0) / n
            _stop(client)
        finally:
            _stop(proc)
    return [
        _row(
            f"RSS per idle subscribed connection (N={n})",
            out["tickwire"],
            "KiB",
            "plain",
            out["plain"],
            False,
        )
    ]


def physical_rows(quick: bool) -> list[Row]:
    res = json.loads(
        _spawn("tickwire.feed._bench_peers", "physical", "1" if quick else "0").communicate(
            timeout=120
        )[0]
    )
    return [
        _row(
            "raw send() calls/s, 300 B, socket pair",
            res["sends_per_s"],
            "c/s",
            "",
            float("nan"),
            True,
        ),
        _row(
            "raw loopback bytes/s, socket pair", res["bytes_per_s"], "B/s", "", float("nan"), True
        ),
    ]


def _link_physical(rows: list[Row]) -> None:
    """tickwire's best delivered messages/s and bytes/s as fractions of the raw limits."""
    sends = next((r["value"] for r in rows if r["name"].startswith("raw send()")), None)
    msgs = [r["value"] for r in rows if r["name"].endswith(": msgs/s")]
    if sends and msgs:
        rows.append(
            _row("best fan-out msgs/s vs raw send() calls/s", max(msgs), "m/s", "raw", sends, True)
        )


if __name__ == "__main__":
    raise SystemExit("run `tickwire bench`")
