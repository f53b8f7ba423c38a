"""`--bus URL`: every malformed URL is one line naming the bad part, before anything connects.

No Redis needed. Before the check, `redis://` hit an assert in coredis, a port of 99999 and an
unclosed IPv6 bracket raised ValueError tracebacks, and a database of `abc` started a gateway.
"""

from __future__ import annotations

import subprocess

import pytest
from _support import tickwire_cmd

from tickwire.feed.bus.url import check_bus_url
from tickwire.feed.cli.main import main
from tickwire.simulators.errors import UserError

BAD = [
    ("redis://", "no host"),
    ("redis://127.0.0.1:99999/0", "the port must be from 1 to 65535, got '99999'"),
    ("redis://127.0.0.1:0/0", "the port must be from 1 to 65535, got '0'"),
    ("redis://127.0.0.1:http/0", "the port must be from 1 to 65535, got 'http'"),
    ("redis://[::1", "not a URL (Invalid IPv6 URL)"),
    ("redis://127.0.0.1:6379/abc", "the database must be a number"),
    ("redis://127.0.0.1:6379?db=x", "the database must be a number"),
    ("unix://", "no socket path"),
    ("unix:///tmp/r.sock?db=-1", "the database must be a number"),
    ("http://127.0.0.1:6379", "--bus must be redis://HOST:PORT/DB or unix:///PATH.sock"),
]


@pytest.mark.parametrize(("url", "says"), BAD)
def test_bad_url_is_a_user_error(url: str, says: str) -> None:
    with pytest.raises(UserError, match=r"^--bus ") as err:
        check_bus_url(url)
    assert says in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "redis://localhost",
        "rediss://user:pw@[::1]:6380/15",
        "redis://h:6379?db=3",
        "unix:///run/redis.sock",
        "unix:///run/redis.sock?db=2",
    ],
)
def test_good_url_passes(url: str) -> None:
    assert check_bus_url(url) == url


def test_password_never_in_the_error() -> None:
    with pytest.raises(UserError) as err:
        check_bus_url("redis://me:hunter2@127.0.0.1:99999/0")
    assert "hunter2" not in str(err.value) and "redis://me:***@127.0.0.1:99999/0" in str(err.value)


@pytest.mark.parametrize(("url", "says"), BAD[:2] + BAD[4:5])  # the attacks' tracebacks
def test_serve_bad_bus_is_one_line(url: str, says: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--bus", url, "--role", "gateway", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tickwire: error: --bus"), err
    assert says in err


def test_serve_refuses_a_database_that_is_not_a_number() -> None:
    # A subprocess: before the check this gateway started and waited for its bus forever.
    out = subprocess.run(
        tickwire_cmd("serve", "--bus", "redis://127.0.0.1:1/abc", "--role", "gateway"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2, out
    assert out.stderr.splitlines() == [
        "tickwire: error: --bus redis://127.0.0.1:1/abc: the database must be a number"
        " (0, 1, ...: /0 or ?db=0), got 'abc'"
    ]
