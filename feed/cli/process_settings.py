"""The settings of the process around the server: scale-out over Redis, and logging.

Declared as `serve_settings` declares the server's, and part of its `SERVE` table; none of them
sets a `ServerConfig` field (`cli.bus`, `oplog` and `serve` read them).
"""

from __future__ import annotations

from tickwire.feed.cli import args
from tickwire.feed.cli.setting import Kind, Section, Setting

# The bus's own DEFAULT_NAMESPACE (bus.redis), not imported: importing it needs coredis.
BUS_NAMESPACE = "tickwire"

SCALE_OUT = Section(
    "scale-out",
    "scale-out over Redis",
    "one producer runs the market and writes it to Redis; any number of gateways, on any "
    "machine that reaches Redis, serve clients the same stream (pip install "
    "'tickwire[redis]'; start Redis with `redis-server --port 6379`)",
)
LOGGING = Section("logging")


def scale_out() -> list[Setting]:
    return [
        Setting(
            name="bus",
            section=SCALE_OUT,
            unit="URL",
            help="the Redis to publish to or read from: redis://HOST:PORT/DB or unix:///PATH.sock",
        ),
        Setting(
            name="role",
            section=SCALE_OUT,
            choices=("producer", "gateway"),
            help="producer: run the market (or --replay) and publish it, no WebSocket listener "
            "unless --port is given; gateway: serve clients from the bus, no market",
        ),
        Setting(
            name="bus-namespace",
            section=SCALE_OUT,
            default=BUS_NAMESPACE,
            unit="NS",
            help="key prefix in Redis, so several feeds can share one (default {default})",
        ),
        Setting(
            name="workers",
            section=SCALE_OUT,
            type=args.non_negative_int,
            default=0,
            unit="N",
            help="start a producer and N gateway processes sharing --port (SO_REUSEPORT), "
            "restart any that crashes; with --role gateway, N gateways only (default {default}: "
            "this process)",
        ),
        # A supervised child: its parent's argv plus this flag; not a setting anyone sets.
        Setting(name="worker", section=SCALE_OUT, kind=Kind.SWITCH, hidden=True, help=""),
    ]


def logging() -> list[Setting]:
    return [
        Setting(
            name="verbose",
            short="-v",
            section=LOGGING,
            kind=Kind.SWITCH,
            help="same as --log-level debug",
        ),
        Setting(
            name="log-level",
            section=LOGGING,
            default="info",
            choices=("debug", "info", "warning", "error"),
            help="log level (default {default})",
        ),
        Setting(
            name="log-format",
            section=LOGGING,
            default="text",
            choices=("text", "json"),
            help="log lines as text or as JSON objects for log shippers (default {default})",
        ),
        Setting(
            name="log-every",
            section=LOGGING,
            type=args.non_negative_float,
            default=60.0,
            unit="SECONDS",
            help="log a one-line summary (clients, msgs/s, ticks/s, overruns) this often, 0 for "
            "never (default {default})",
        ),
    ]
