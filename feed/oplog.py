"""Logs an operator can use: JSON lines for log shippers, the periodic summary, no tokens.

- `JsonFormatter`: one JSON object per line (`ts`, `level`, `logger`, `msg`, then any `extra=`
  fields the call passed, e.g. peer, path, close code), for `--log-format json`.
- `RedactTokens`: a filter that blanks `token=...`, `Bearer ...` and URL passwords
  (`urls.redact`) in every message and field, so a URL or header logged by any library never
  leaks a secret.
- `summary(prev, cur, dt_s)`: the periodic one-line summary (every `--log-every` seconds) from two
  `statistics()` dicts: clients, messages/s, ticks/s, new cadence overruns.

Pure formatting over dicts and log records: no trio, no clock of its own.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tickwire.feed import urls

_TOKEN = re.compile(r"(?i)(token=|bearer\s+)([^\s&\"',;]+)")
# Attributes every LogRecord has: anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def counted(n: int, noun: str) -> str:
    """'1 client', '2 clients': log lines read as sentences."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def redact(text: str) -> str:
    """`text` with every token value replaced by `<redacted>`, and URL credentials masked."""
    return _TOKEN.sub(r"\1<redacted>", urls.redact(text))


class RedactTokens(logging.Filter):
    """Blank tokens in the message, its arguments and its extra fields (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, redact(value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, one line each: what Loki, Elastic and Datadog ingest."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup(level: int, log_format: str = "text") -> None:
    """Configure the root logger for `tickwire serve`: text or JSON lines on stderr, tokens
    redacted, trio-websocket's and wsproto's internals only at debug."""
    handler = logging.StreamHandler()
    handler.addFilter(RedactTokens())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet = logging.DEBUG if level <= logging.DEBUG else logging.WARNING
    for name in ("trio-websocket", "wsproto", "h11"):
        logging.getLogger(name).setLevel(quiet)


def summary(
    prev: Mapping[str, Any], cur: Mapping[str, Any], dt_s: float
) -> tuple[str, dict[str, Any]]:
    """The periodic summary line and its fields (for `extra=`), from two statistics() dicts."""

    def rate(key: str) -> float:
        return (cur.get(key, 0) - prev.get(key, 0)) / dt_s if dt_s > 0 else 0.0

    fields = {
        "clients": cur.get("clients", 0),
        "msgs_per_s": round(rate("messages_sent")),
        "ticks_per_s": round(rate("ticks_sent")),
        "published_per_s": round(rate("ticks_published")),
        "overruns": cur.get("cadence_overruns", 0) - prev.get("cadence_overruns", 0),
    }
    line = (
        f"{counted(fields['clients'], 'client')}, {fields['msgs_per_s']:,} msgs/s, "
        f"{fields['ticks_per_s']:,} ticks/s sent, {fields['published_per_s']:,} ticks/s "
        f"published, {fields['overruns']} cadence overruns in the last {dt_s:g} s"
    )
    return line, fields
