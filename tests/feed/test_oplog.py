"""Operator logs: JSON lines, tokens never logged, the periodic summary."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from tickwire.feed.oplog import (
    JsonFormatter,
    RedactTokens,
    redact,
    setup,
    summary,
)


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactTokens())
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("tickwire.test_oplog")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    yield log, out
    log.removeHandler(handler)


def test_json_lines_carry_extra_fields(capture: tuple[logging.Logger, io.StringIO]) -> None:
    log, out = capture
    log.info(
        "client %s connected", "127.0.0.1:5000", extra={"peer": "127.0.0.1:5000", "code": 1000}
    )
    [line] = out.getvalue().splitlines()
    rec = json.loads(line)
    assert rec["msg"] == "client 127.0.0.1:5000 connected"
    assert rec["level"] == "info" and rec["logger"] == "tickwire.test_oplog"
    assert rec["peer"] == "127.0.0.1:5000" and rec["code"] == 1000
    assert rec["ts"].endswith("+00:00")


def test_exceptions_stay_on_one_line(capture: tuple[logging.Logger, io.StringIO]) -> None:
    log, out = capture
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("client failed")
    [line] = out.getvalue().splitlines()
    assert "ValueError: boom" in json.loads(line)["exc"]


def test_tokens_are_never_logged(capture: tuple[logging.Logger, io.StringIO]) -> None:
    log, out = capture
    log.info("refused %s", "/v1?token=s3cret&x=1", extra={"path": "/v1?token=s3cret"})
    log.info("header Authorization: Bearer abc.def-ghi")
    text = out.getvalue()
    assert "s3cret" not in text and "abc.def-ghi" not in text
    assert "token=<redacted>&x=1" in text and "Bearer <redacted>" in text


def test_redact() -> None:
    assert redact("ws://h/v1?token=a%20b") == "ws://h/v1?token=<redacted>"
    assert redact("nothing here") == "nothing here"


def test_summary_line() -> None:
    prev = {"clients": 2, "messages_sent": 1000, "ticks_sent": 5000, "cadence_overruns": 1}
    cur = {
        "clients": 3,
        "messages_sent": 21000,
        "ticks_sent": 105000,
        "ticks_published": 20000,
        "cadence_overruns": 4,
    }
    line, fields = summary(prev, cur, 10.0)
    assert line == (
        "3 clients, 2,000 msgs/s, 10,000 ticks/s sent, 2,000 ticks/s published,"
        " 3 cadence overruns in the last 10 s"
    )
    assert fields == {
        "clients": 3,
        "msgs_per_s": 2000,
        "ticks_per_s": 10000,
        "published_per_s": 2000,
        "overruns": 3,
    }


def test_setup_keeps_library_internals_at_debug() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        setup(logging.INFO, "json")
        assert logging.getLogger("trio-websocket").level == logging.WARNING
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        setup(logging.DEBUG)
        assert logging.getLogger("wsproto").level == logging.DEBUG
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name in ("trio-websocket", "wsproto", "h11"):
            logging.getLogger(name).setLevel(logging.NOTSET)
