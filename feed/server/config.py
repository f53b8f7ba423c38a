"""What `tickwire serve` configures (`ServerConfig`). Plain data and checks; the server is
`server.py`, the parts it is composed of `roles.py`.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Literal

from tickwire.feed import protocol as p
from tickwire.feed import venues
from tickwire.feed.faults import FaultSpec
from tickwire.feed.v1 import state as st
from tickwire.feed.ws import http
from tickwire.simulators import Universe
from tickwire.simulators.errors import UserError
from tickwire.simulators.scenario import Scenario


@dataclass
class ServerConfig:
    """Everything `tickwire serve` can set; the defaults work with no flags."""

    host: str = "127.0.0.1"
    port: int = 8765
    cadence_ms: float = 1.0
    seed: int = 0
    universe: Universe | None = None  # None: Universe.default()
    activity: float = 1.0
    session: Literal["6.5h", "24h"] = "6.5h"  # trading day shape; see tickwire.simulators.market
    scenario: Scenario | None = None  # timed market events (halts, crashes); None: a plain day
    tokens: tuple[str, ...] = ()
    certfile: str | None = None
    keyfile: str | None = None
    max_connections: int = 1000
    max_connections_per_ip: int = 0  # 0: no limit
    allow_origins: tuple[str, ...] = ()  # besides the server's own host; "*" for any
    heartbeat_ms: int = 1000
    stall_ms: int = 10_000
    reuse_port: bool = False  # SO_REUSEPORT: several processes may serve the same port
    limits: st.Limits = field(default_factory=st.Limits)
    history_s: float = 60.0  # resume window: event time kept for every-update readers...
    history_mb: float = 256.0  # ...and the memory it may take, whichever binds first
    alpaca_connections_per_key: int = 1  # Alpaca's 406 past this many per key and feed; 0: none
    binance_ping_s: float = 20.0  # Binance pings every 20 s (tests: shorter)
    binance_weight_per_min: int = 6000  # REST request weight per address and minute (Binance's)
    max_lag_s: float = 1.0  # an every-update reader further behind gets the latest state
    faults: tuple[tuple[str, FaultSpec], ...] = ()  # (path, spec): the operator's faults
    admin_token: str | None = None  # POST /admin/scenario needs it; None: no admin endpoint
    # Order book levels (ticks a side) the market keeps; 0: none. On by default, as every venue
    # tickwire imitates publishes depth; books make generation several times costlier, so a
    # large universe may need --book-depth 0 to pass the capacity check.
    book_depth: int = 20

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.certfile:
            if self.keyfile:
                raise UserError("--keyfile needs --certfile (the certificate it belongs to)")
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ctx.load_cert_chain(self.certfile, self.keyfile)
        except ssl.SSLError as exc:  # "[SSL] PEM lib (_ssl.c:3905)" says nothing to a user
            raise UserError(_tls_files_error(self.certfile, self.keyfile, exc)) from None
        except OSError as exc:
            why = exc.strerror or exc
            raise UserError(
                f"cannot load certificate {self.certfile!r}"
                f"{f' with key {self.keyfile!r}' if self.keyfile else ''}: {why}"
            ) from None
        return ctx

    def policy(self) -> http.Policy:
        if any(not t.strip() for t in self.tokens):
            raise UserError(f"--token: {http.TOKEN_REFUSED}")
        hosts, wildcard = http.own_hosts(self.host)
        try:
            origins = tuple(http.normalise_origin(o) for o in self.allow_origins)
        except ValueError as exc:
            raise UserError(f"--allow-origin: {exc}") from None
        return http.Policy(
            ws_routes={p.PATH: p.SUBPROTOCOLS},
            tokens=self.tokens,
            allow_origins=origins,
            own_hosts=hosts,
            wildcard_bind=wildcard,
            prefix_route=lambda path: venues.route(path) is not None,
            self_auth=("/alpaca/",),  # Alpaca's auth message carries the key (checked there)
        )


def _tls_files_error(certfile: str, keyfile: str | None, exc: ssl.SSLError) -> str:
    """What is wrong with --certfile/--keyfile, in words: OpenSSL's own say only "PEM lib"."""
    if exc.reason == "KEY_VALUES_MISMATCH":
        return f"--keyfile {keyfile!r} is not the private key of --certfile {certfile!r}"
    if keyfile:
        return (
            f"cannot load certificate {certfile!r} with key {keyfile!r}: --certfile takes a PEM"
            " certificate (chain) and --keyfile its PEM private key"
        )
    return (
        f"cannot load certificate {certfile!r}: --certfile takes a PEM certificate (chain)"
        " followed by its PEM private key, or give the key as --keyfile KEY.pem"
    )
