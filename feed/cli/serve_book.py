"""The order book's serve setting (`--book-depth`), a row of `serve_settings.SERVE`."""

from __future__ import annotations

from tickwire.feed.cli import args
from tickwire.feed.cli.setting import Section, Setting
from tickwire.feed.server.config import ServerConfig

BOOK_DEPTH = Setting(
    name="book-depth",
    section=Section("market"),
    type=args.book_depth,
    default=ServerConfig.book_depth,
    unit="N",
    field="book_depth",
    help="order book levels (ticks a side) the market keeps and /v1 serves (subscribe with "
    '"book"), 0 to 1000; books make the market ~8x costlier to generate (the capacity check '
    "counts them: a large universe may need 0); 0: no books (default {default})",
)
