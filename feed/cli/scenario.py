"""`tickwire scenario run NAME|FILE`: start a market scenario on a running server, live.

One authenticated request, `POST /admin/scenario` (`server/admin.py`), with the server's admin
token (`serve --admin-token`); a file is checked here first (the same one-line errors as
`serve --scenario`) and sent as its text. Every refusal (no admin token on the server, a wrong
token, a bad scenario, a server that is down) is one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tickwire.feed.cli.args import add_cafile_argument, ssl_context_from
from tickwire.feed.urls import redact
from tickwire.simulators.errors import UserError
from tickwire.simulators.scenario import names

DEFAULT_URL = "http://127.0.0.1:8765"
TOKEN_ENV = "TICKWIRE_ADMIN_TOKEN"
TIMEOUT_S = 10.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ap = sub.add_parser(
        "scenario",
        help="start a market scenario on a running server",
        description="Start a market scenario (halts, a flash crash...) on a running server, "
        "live, as `serve --scenario` plays one from the start. The server needs --admin-token.",
        epilog="examples:\n"
        "  tickwire scenario run flash-crash --url http://127.0.0.1:8765 --token s3cret\n"
        "  tickwire scenario run halt --symbol AAPL\n"
        "  tickwire scenario run bad-morning.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = ap.add_subparsers(dest="action", metavar="ACTION", required=True)
    run = actions.add_parser(
        "run",
        help="start one now",
        description="Start a scenario now: its event times count from now.",
    )
    run.add_argument(
        "scenario", metavar="NAME|FILE", help=f"a .toml file or a shipped one: {', '.join(names())}"
    )
    run.add_argument("--symbol", help="play it on this symbol only (default: as the file says)")
    run.add_argument("--url", default=DEFAULT_URL, help="the server (default %(default)s)")
    run.add_argument(
        "--token", help=f"the server's admin token (default: the {TOKEN_ENV} variable)"
    )
    add_cafile_argument(run)
    run.set_defaults(func=_run)


def admin_url(url: str) -> str:
    """The server's `/admin/scenario` from its URL (http(s)://, or the ws(s):// of its feed)."""
    parts = urllib.parse.urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    if scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"--url must be http://HOST:PORT (or the feed's ws:// URL), got {url!r}")
    return f"{scheme}://{parts.netloc}/admin/scenario"


def _run(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        raise UserError(f"no admin token: pass --token TOKEN or set {TOKEN_ENV}")
    query: dict[str, str] = {}
    path = Path(args.scenario)
    if path.suffix.lower() == ".toml" or path.exists():
        try:
            query["toml"] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read scenario {args.scenario}: {exc}") from None
        query["file"] = path.name
    else:
        query["name"] = args.scenario
    if args.symbol:
        query["symbol"] = args.symbol
    url = admin_url(args.url)
    req = urllib.request.Request(
        f"{url}?{urllib.parse.urlencode(query)}",
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Length": "0"},
    )
    context = ssl_context_from(args.cafile)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S, context=context) as resp:
            reply = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise UserError(f"{redact(url)}: HTTP {exc.code}: {_reason(exc)}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise UserError(_unreachable(redact(url), getattr(exc, "reason", exc))) from None
    where = f" on {args.symbol}" if args.symbol else ""
    if "forwarded" in reply:  # a bus gateway: the producer plays it, within a second or so
        print(
            f"scenario {reply['scenario']} sent to {reply['forwarded']}{where}: "
            f"{_events(reply['events'])}, starting when it takes it (within a second)"
        )
        return 0
    print(
        f"scenario {reply['scenario']} started{where}: {_events(reply['events'])}, "
        f"time 0 in {reply['in_s']:.1f} s"
    )
    return 0


def _unreachable(url: str, why: object) -> str:
    """Why the admin endpoint did not answer, and what to try."""
    if isinstance(why, ssl.SSLCertVerificationError):
        return (
            f"certificate verify failed for {url}: {why.verify_message}; if the server's"
            " certificate comes from a private CA, pass --cafile CA.pem"
        )
    if isinstance(why, http.client.RemoteDisconnected) and url.startswith("http://"):
        return f"{url} closed the connection: if the server uses TLS (--certfile), use https://"
    if isinstance(why, OSError) and not isinstance(why, ssl.SSLError) and why.strerror:
        why = why.strerror.lower()  # "connection refused", not "[Errno 111] Connection refused"
    return f"cannot reach {url}: {why}; is `tickwire serve` running?"


def _events(n: int) -> str:
    return f"{n} event{'' if n == 1 else 's'}"


def _reason(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read())
        return str(body["error"])
    except (ValueError, KeyError, TypeError, OSError):
        return str(exc.reason)


__all__ = ["admin_url", "register"]
