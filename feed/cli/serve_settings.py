"""Every `tickwire serve` setting, declared once: its flag, file key, variable, default and help.

`config.add_arguments` makes the flags of this table, `config.resolve` layers the variables and
the file under them, `config.print_config` prints it and `config.markdown` writes the README's
reference (a test keeps the README equal to it). Defaults come from `ServerConfig` where the
server has the field, so a default lives in one place. Order is --print-config's order.
A setting that configures the server names its `ServerConfig` field, and `server_config` builds
the config from the resolved settings: a new setting is one entry here (and its field there).
The process's own settings (scale-out, logging) are declared in `process_settings`.
"""

from __future__ import annotations

import argparse
from typing import Any

from tickwire.feed.cli import args, process_settings
from tickwire.feed.cli.serve_book import BOOK_DEPTH
from tickwire.feed.cli.serve_faults import settings as _fault_settings
from tickwire.feed.cli.setting import Kind, Section, Setting
from tickwire.feed.server.server import ServerConfig
from tickwire.feed.v1 import state as st
from tickwire.simulators import Universe
from tickwire.simulators.cli import SESSION_S, seed_value, symbol_count, universe_from_args
from tickwire.simulators.scenario import load as load_scenario
from tickwire.simulators.scenario import names as scenario_names
from tickwire.simulators.ticks import MAX_SYMBOLS

SERVER = Section("server")
MARKET = Section("market")
REPLAY = Section(
    "replay", "replay", "serve recorded or real ticks instead of the model (same protocol)"
)

_D = ServerConfig()


def _limits(max_symbols: int) -> st.Limits:
    return st.Limits(max_symbols=max_symbols)


def _market() -> list[Setting]:
    return [
        Setting(
            name="seed",
            field="seed",
            section=MARKET,
            type=seed_value,
            default=0,
            help="market seed (default {default})",
        ),
        Setting(
            name="symbols",
            field="universe",
            section=MARKET,
            type=symbol_count,
            unit="N",
            exclusive="universe",
            help=f"a synthetic universe of N symbols (1 to {MAX_SYMBOLS}) instead of the default "
            "one",
        ),
        Setting(
            name="universe",
            field="universe",
            section=MARKET,
            unit="FILE",
            exclusive="universe",
            help="a built-in universe (default, or crypto: BTC-USD, ETH-USD, ...) or one from a "
            ".csv or .toml file (columns/keys: symbol,name,sector,price,tick_size,lot_size,"
            "activity[,kind,base,quote]; symbol and price required; kind stock, etf or crypto)",
        ),
        Setting(
            name="activity",
            field="activity",
            section=MARKET,
            type=args.positive_float,
            default=1.0,
            unit="X",
            help="scale every trade and quote rate (default {default})",
        ),
        BOOK_DEPTH,
        Setting(
            name="session",
            field="session",
            section=MARKET,
            choices=tuple(SESSION_S),
            default=_D.session,
            help="6.5h: back-to-back trading sessions with an intraday shape; 24h: around the "
            "clock (default {default})",
        ),
        Setting(
            name="scenario",
            field="scenario",
            section=MARKET,
            unit="FILE|NAME",
            help="play a market scenario: a .toml file of timed events (halts, flash crash, gap, "
            "...) or a shipped one by name (" + ", ".join(scenario_names()) + "); same --seed "
            "and file, same stream; not with --replay",
        ),
    ]


def _access() -> list[Setting]:
    return [
        Setting(
            name="token",
            field="tokens",
            to_field=tuple,
            section=SERVER,
            kind=Kind.LIST,
            type=args.server_token,
            unit="TOKEN",
            help="require this token (repeat for several); clients send "
            "'Authorization: Bearer TOKEN' or ?token=TOKEN",
        ),
        Setting(
            name="certfile",
            field="certfile",
            section=SERVER,
            unit="PEM",
            help="TLS certificate (PEM): serve wss://",
        ),
        Setting(
            name="keyfile",
            field="keyfile",
            section=SERVER,
            unit="PEM",
            help="TLS private key (PEM), if not inside --certfile",
        ),
        Setting(
            name="allow-origin",
            field="allow_origins",
            to_field=tuple,
            section=SERVER,
            kind=Kind.LIST,
            unit="URL",
            help="let web pages from this origin connect, e.g. https://example.com (repeat for "
            "several; '*' for any). Pages served from the server's own host are always allowed, "
            "other browser origins get HTTP 403; clients that send no Origin (not browsers) pass",
        ),
        Setting(
            name="max-connections",
            field="max_connections",
            section=SERVER,
            unit="N",
            type=args.positive_int,
            default=_D.max_connections,
            help="sockets held at once, handshakes included; clients beyond this are closed with "
            "1013, once sockets that sent no request yet have been shed (default {default})",
        ),
        Setting(
            name="max-connections-per-ip",
            field="max_connections_per_ip",
            section=SERVER,
            type=args.non_negative_int,
            default=_D.max_connections_per_ip,
            unit="N",
            help="sockets one client address may hold, checked at accept: a new one replaces its "
            "oldest socket that sent no request yet, else gets HTTP 429 (default {default}: no "
            "limit; behind a proxy every client has the proxy's address)",
        ),
    ]


def _clients() -> list[Setting]:
    return [
        Setting(
            name="heartbeat-ms",
            field="heartbeat_ms",
            section=SERVER,
            unit="MS",
            type=args.non_negative_int,
            default=_D.heartbeat_ms,
            help="heartbeat after this much silence, 0 to disable (default {default})",
        ),
        Setting(
            name="stall-ms",
            field="stall_ms",
            section=SERVER,
            unit="MS",
            type=args.positive_int,
            default=_D.stall_ms,
            help="close a client (1008) whose socket accepts nothing this long (default {default})",
        ),
        Setting(
            name="max-symbols",
            field="limits",
            to_field=_limits,
            section=SERVER,
            unit="N",
            type=args.positive_int,
            default=st.Limits().max_symbols,
            help="explicit symbols per connection (default {default}; '*' always allowed)",
        ),
        Setting(
            name="alpaca-connections-per-key",
            field="alpaca_connections_per_key",
            section=SERVER,
            type=args.non_negative_int,
            default=_D.alpaca_connections_per_key,
            unit="N",
            help="authenticated /alpaca/ connections per key and feed; more get Alpaca's 406 "
            "(default {default}, as at Alpaca; 0: no limit, e.g. for many bots on one key)",
        ),
        Setting(
            name="binance-weight-per-min",
            field="binance_weight_per_min",
            section=SERVER,
            type=args.positive_int,
            default=_D.binance_weight_per_min,
            unit="N",
            help="REST request weight per address and minute under /binance/api/; more gets "
            "Binance's 429 with Retry-After (default {default}, as at Binance)",
        ),
    ]


def _replay() -> list[Setting]:
    return [
        Setting(
            name="replay",
            section=REPLAY,
            nargs="+",
            unit="FILE",
            help="tickwire .parquet/.npy/.csv (from record or simulate), or quote/trade CSVs "
            "(.csv or .csv.gz, e.g. Tardis quotes and trades), merged in time order",
        ),
        Setting(
            name="speed",
            section=REPLAY,
            type=args.non_negative_float,
            default=1.0,
            unit="X",
            help="1 real time, 10 ten times faster, 0 as fast as the clients read "
            "(default {default})",
        ),
        Setting(
            name="start",
            section=REPLAY,
            unit="TIME",
            help="from this time (ISO 8601, ns, or +10m)",
        ),
        Setting(
            name="end", section=REPLAY, unit="TIME", help="up to this time (ISO 8601, ns, or +10m)"
        ),
        Setting(
            name="loop", section=REPLAY, kind=Kind.SWITCH, help="start over at the end, forever"
        ),
        Setting(
            name="strict",
            section=REPLAY,
            kind=Kind.SWITCH,
            help="refuse a file with any row that cannot be replayed (a NaN price, a crossed "
            "quote, a value out of range), naming it; by default such rows are skipped and "
            "counted in a log line",
        ),
        Setting(
            name="columns",
            section=REPLAY,
            unit="MAP",
            help="column names of a CSV when they differ, e.g. ts=time,symbol=ticker,bid=bp,"
            "ask=ap,bid_size=bs,ask_size=as,price=px,size=qty,side=side",
        ),
    ]


def _history_and_drain() -> list[Setting]:
    return [
        Setting(
            name="history",
            field="history_s",
            section=SERVER,
            type=args.duration_s,
            default=_D.history_s,
            unit="DURATION",
            help="keep this much recent data for every-update readers and resumes, e.g. 60s, "
            "5m, 0 for none (default {default}s)",
        ),
        Setting(
            name="history-mb",
            field="history_mb",
            section=SERVER,
            type=args.positive_float,
            default=_D.history_mb,
            unit="MB",
            help="memory cap of that history; the older data goes first (default {default})",
        ),
        Setting(
            name="max-lag",
            field="max_lag_s",
            section=SERVER,
            type=args.duration_s,
            default=_D.max_lag_s,
            unit="DURATION",
            help="an every-update reader further behind the newest data than this (event time) "
            "gets the latest state of each changed symbol instead (per-symbol seq jumps, counted "
            "in ticks_conflated), then every update again; a resuming client first gets all it "
            "missed; 0: no bound but --history (default {default}s)",
        ),
        Setting(
            name="drain-s",
            section=SERVER,
            type=args.non_negative_float,
            default=10.0,
            unit="SECONDS",
            help="on SIGTERM, close the clients with 1012 spread over this long (default "
            "{default}); a second SIGTERM or Ctrl+C stops at once",
        ),
        Setting(
            name="drain-min-s",
            section=SERVER,
            type=args.non_negative_float,
            default=5.0,
            unit="SECONDS",
            help="on SIGTERM, keep the port open this long (/readyz 503, new clients refused) so "
            "a load balancer's health check sees it, even with no client; 0 without a balancer "
            "(default {default})",
        ),
    ]


SERVE: tuple[Setting, ...] = (
    Setting(
        name="host",
        field="host",
        section=SERVER,
        default=_D.host,
        help="address to bind (default {default})",
    ),
    Setting(
        name="port",
        field="port",
        section=SERVER,
        type=args.port_number,
        default=_D.port,
        help="TCP port, 0 for any free port (default {default})",
    ),
    Setting(
        name="cadence",
        field="cadence_ms",
        section=SERVER,
        type=args.positive_float,
        default=_D.cadence_ms,
        unit="MS",
        help="generator and flush interval in ms (default {default})",
    ),
    *_market(),
    *_access(),
    *_clients(),
    *_fault_settings(SERVER),  # --faults, --admin-token
    *_replay(),
    *_history_and_drain(),
    *process_settings.scale_out(),
    *process_settings.logging(),
    Setting(
        name="no-capacity-check",
        section=SERVER,
        kind=Kind.SWITCH,
        help="start even if this machine cannot generate the market in real time (measured at "
        "start: a universe whose generation takes over half a core at the open is refused)",
    ),
)

# Fields that take several settings, built by `server_config` itself.
_BUILT = ("universe", "scenario")


def server_config(ns: argparse.Namespace) -> ServerConfig:
    """The server's config from the resolved settings: each setting sets the `field` it names.

    Two take several settings: the universe (--universe, or --symbols with --seed) and the
    scenario (its file played on that universe; none with --replay).
    """
    fields: dict[str, Any] = {}
    for s in SERVE:
        if s.field is not None and s.field not in _BUILT:
            value = getattr(ns, s.attr)
            fields[s.field] = value if s.to_field is None else s.to_field(value)
    fields["universe"] = universe = universe_from_args(ns)
    if ns.scenario and not ns.replay:
        # A bad file is one ScenarioError line naming the file, the event and the field.
        fields["scenario"] = load_scenario(ns.scenario, universe or Universe.default())
    return ServerConfig(**fields)


if __name__ == "__main__":  # the README's reference: python -m tickwire.feed.cli.serve_settings
    from tickwire.feed.cli.config import markdown

    print(markdown(SERVE), end="")
