"""`urls.redact`: the one helper every printed URL goes through (no sockets)."""

from __future__ import annotations

import logging

import pytest

from tickwire.feed import oplog, urls
from tickwire.feed.client.dial import parse_url
from tickwire.feed.client.events import ConnectError
from tickwire.feed.server.metrics import readyz


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:PASSWORD@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://user:pass@host/0", "redis://user:***@host/0"),
        ("rediss://default:p@ss@h:6380/1", "rediss://default:***@h:6380/1"),  # unencoded @
        ("redis://onlyword@host", "redis://***@host"),
        ("wss://u:p@feed.example/v1?token=abc&x=1", "wss://u:***@feed.example/v1?token=***&x=1"),
        ("unix:///run/r.sock?password=pw&db=2", "unix:///run/r.sock?password=***&db=2"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("unix:///tmp/redis.sock", "unix:///tmp/redis.sock"),
        ("ws://[::1]:8765/v1", "ws://[::1]:8765/v1"),
    ],
)
def test_redact_masks_the_password_and_keeps_the_rest(url: str, shown: str) -> None:
    assert urls.redact(url) == shown


def test_redact_finds_urls_inside_a_line() -> None:
    line = "bus down: redis://:pw1@a:1/0 (Error connecting); got 'redis://u:pw2@b/0', see x@y"
    assert urls.redact(line) == (
        "bus down: redis://:***@a:1/0 (Error connecting); got 'redis://u:***@b/0', see x@y"
    )


def test_every_log_line_is_redacted_by_the_filter() -> None:
    record = logging.makeLogRecord(
        {"msg": "waiting for the bus at %s: %s", "args": ("redis://:s3cret@h/0", "refused")}
    )
    record.url = "redis://:s3cret@h/0"  # an extra= field
    assert oplog.RedactTokens().filter(record)
    assert record.getMessage() == "waiting for the bus at redis://:***@h/0: refused"
    assert record.url == "redis://:***@h/0"


def test_readyz_never_shows_a_password() -> None:
    status, _, body = readyz(
        listening=True,
        draining=False,
        last_publish_s=None,
        now_s=0.0,
        cadence_ms=1.0,
        upstream="the bus is down (redis://:s3cret@10.0.0.5:6379/0)",
    )
    assert status == 503 and b"s3cret" not in body and b"redis://:***@10.0.0.5" in body


def test_a_client_error_shows_the_url_without_its_password() -> None:
    with pytest.raises(ConnectError) as bad:
        parse_url("ws://me:s3cret@host:99999/v1")
    assert "s3cret" not in str(bad.value) and "me:***@host" in str(bad.value)
    assert parse_url("ws://me:s3cret@host/v1?token=t0k").shown == "ws://me:***@host/v1?token=***"


def test_the_dashboard_shows_and_reports_its_url_without_the_password() -> None:
    from tickwire.dashboard.cli import check_url
    from tickwire.dashboard.status import StatusInfo, status_markup
    from tickwire.simulators.errors import UserError

    shown = str(status_markup(StatusInfo(url="ws://me:s3cret@feed.example:8765/v1")))
    assert "s3cret" not in shown and "ws://me:***@feed.example:8765/v1" in shown
    with pytest.raises(UserError) as bad:
        check_url("ws://me:s3cret@feed.example:port/v1")
    assert "s3cret" not in str(bad.value) and "me:***@feed.example" in str(bad.value)
