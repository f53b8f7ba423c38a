"""`tickwire dashboard` and `tickwire demo`: parse flags, build the app, run it.

`demo` starts the real feed server in a background thread (its own `trio.run`, a free port on
127.0.0.1, order books 20 levels a side, so the detail screen has its depth ladder) and opens the
dashboard on it, so `tickwire demo` needs nothing else running; when the dashboard quits (q,
Ctrl+C) the server shuts down as `serve` does on Ctrl+C (any client left is closed with 1001).
Mistakes (bad URL, refused token, bad flag) end in one line, no traceback, via `UserError`.
"""

from __future__ import annotations

import argparse
import functools
import gc
import ssl
from pathlib import Path
from typing import Literal

from tickwire.feed.cli.args import add_cafile_argument, ssl_context_from
from tickwire.feed.urls import UrlError, check_ws_url
from tickwire.simulators.cli import seed_value
from tickwire.simulators.errors import UserError
from tickwire.simulators.numbers import positive_float

from . import config as cfg
from .local_server import demo_server


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser(
        "demo",
        help="a live simulated market in the terminal dashboard, nothing else to run",
        description="Start a feed server in this process on a free port (with order books, 20 "
        "levels a side) and open the dashboard on it. Keys: a add, d remove, s sort, / filter, "
        "Enter detail, p pause, ? help, q quit.",
    )
    demo.add_argument(
        "--seed", type=seed_value, default=0, help="market seed (default %(default)s)"
    )
    demo.add_argument(
        "--activity",
        type=positive_float,
        default=1.0,
        help="scale every trade and quote rate (default %(default)s)",
    )
    _add_common(demo)
    demo.set_defaults(func=_demo)

    dash = sub.add_parser(
        "dashboard",
        help="the terminal dashboard on a running server",
        description="A live watchlist on a tickwire server: sparklines, flashes, sort, filter, "
        "detail screen. Settings (watchlist, sort, theme, fps) are saved in "
        f"{cfg.default_path()}.",
        epilog="examples:\n  tickwire dashboard\n  tickwire dashboard --url ws://host:8765/v1 "
        "--token s3cret\n  tickwire dashboard --watchlist AAPL,MSFT,SPY --fps 30",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dash.add_argument(
        "--url", default="ws://127.0.0.1:8765/v1", help="server URL (default %(default)s)"
    )
    dash.add_argument("--token", help="token, if the server requires one")
    add_cafile_argument(dash)
    _add_common(dash)
    dash.set_defaults(func=_dashboard)


def _add_common(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--watchlist",
        type=_symbols,
        metavar="A,B,C",
        help="symbols to watch, for this run only (the saved watchlist stays, unless --save)",
    )
    ap.add_argument(
        "--save",
        action="store_true",
        help="with --watchlist: keep it as the saved watchlist from now on",
    )
    ap.add_argument(
        "--fps",
        type=_fps,
        help=f"screen refreshes per second, 1 to {cfg.MAX_FPS:.0f} (default: saved, else "
        f"{cfg.DEFAULT_FPS:.0f})",
    )
    ap.add_argument(
        "--binary", action="store_true", help="use the binary encoding on the wire (fastest)"
    )
    ap.add_argument("--config", type=Path, help=f"settings file (default {cfg.default_path()})")
    ap.add_argument(
        "--no-config", action="store_true", help="neither read nor write the settings file"
    )


def _symbols(text: str) -> list[str]:
    out = [s.upper() for s in text.replace(",", " ").split()]  # AAPL,MSFT or 'AAPL MSFT'
    if not out:
        raise argparse.ArgumentTypeError("expected symbols separated by commas, e.g. AAPL,MSFT")
    return out


def _fps(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 1 <= value <= cfg.MAX_FPS:
        raise argparse.ArgumentTypeError(
            f"must be a number from 1 to {cfg.MAX_FPS:.0f}, got {text}"
        )
    return value


def check_url(url: str) -> str:
    try:
        check_ws_url(url)
    except UrlError as exc:
        raise UserError(str(exc)) from None
    return url


def _dashboard(args: argparse.Namespace) -> int:
    url = check_url(args.url)
    return run_app(args, url, token=args.token, ssl_context=ssl_context_from(args.cafile))


def _demo(args: argparse.Namespace) -> int:
    with demo_server(seed=args.seed, activity=args.activity) as url:
        return run_app(args, url, token=None)


def run_app(
    args: argparse.Namespace,
    url: str,
    *,
    token: str | None,
    ssl_context: ssl.SSLContext | None = None,
) -> int:
    from tickwire.feed import connect

    from .app import DashboardApp

    path, settings, warning = load_settings(args)
    encoding: Literal["json", "binary"] = "binary" if args.binary else "json"
    app = DashboardApp(
        functools.partial(connect, url, token=token, encoding=encoding, ssl_context=ssl_context),
        url=url,
        settings=settings,
        config_path=path,
        watchlist=args.watchlist,
        fps=args.fps,
    )
    if warning:
        app.call_later(app.notify, warning, severity="warning")
    app.run()
    # The process ends next: objects frozen now are left out of the interpreter's collections at
    # exit, which cost 0.3-0.6 s of a quit on a busy machine (Textual, numpy, trio, the server).
    gc.freeze()
    if app.fatal_error:
        raise UserError(app.fatal_error)
    return app.return_code or 0


def load_settings(args: argparse.Namespace) -> tuple[Path | None, cfg.DashboardConfig, str | None]:
    """The settings file, its settings and a warning if it was unusable. `--watchlist` is a
    one-off unless `--save`: saving the other settings then keeps the saved watchlist."""
    path = None if args.no_config else (args.config or cfg.default_path())
    settings, warning = cfg.load(path)
    if args.watchlist and not args.save:
        settings.saved_watchlist = list(settings.watchlist)
    return path, settings, warning
