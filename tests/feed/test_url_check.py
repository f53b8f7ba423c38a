"""`_urls.split_url` and `check_ws_url`: the one URL check behind the client, the dashboard and
`--bus` (no sockets)."""

from __future__ import annotations

import pytest

from tickwire.dashboard.cli import check_url
from tickwire.feed.bus.url import check_bus_url
from tickwire.feed.client.dial import parse_url
from tickwire.feed.client.events import ConnectError
from tickwire.feed.urls import UrlError, check_ws_url, split_url
from tickwire.simulators.errors import UserError


@pytest.mark.parametrize(
    ("url", "part"),
    [
        ("http://h/v1", "scheme"),
        ("ws:///v1", "host"),
        ("ws://h:notaport/v1", "port"),
        ("ws://h:70000/v1", "port"),
        ("ws://[::1:8765/v1", "url"),
    ],
)
def test_split_url_names_the_bad_part(url: str, part: str) -> None:
    with pytest.raises(UrlError) as caught:
        split_url(url, ("ws", "wss"))
    assert caught.value.part == part


def test_split_url_hostless_schemes_need_no_host() -> None:
    assert split_url("unix:///tmp/r.sock", ("unix",), hostless=("unix",)).path == "/tmp/r.sock"


def test_ws_check_redacts_and_says_what_is_allowed() -> None:
    with pytest.raises(UrlError, match=r"bad URL 'http://u:\*\*\*@h/v1': expected ws://"):
        check_ws_url("http://u:secret@h/v1")
    assert check_ws_url("wss://h:443/v1").port == 443


@pytest.mark.parametrize("url", ["ws://[::1:8765/v1", "ws://h:x/v1", "ftp://h/v1"])
def test_client_and_dashboard_refuse_alike(url: str) -> None:
    """An unclosed IPv6 bracket used to escape both as a bare ValueError."""
    with pytest.raises(ConnectError) as client:
        parse_url(url)
    with pytest.raises(UserError) as dashboard:
        check_url(url)
    assert str(client.value) == str(dashboard.value)


def test_bus_keeps_its_own_messages() -> None:
    with pytest.raises(UserError, match="not a URL"):
        check_bus_url("redis://[::1")
    with pytest.raises(UserError, match="the port must be from 1 to 65535, got 'x'"):
        check_bus_url("redis://h:x/0")
    with pytest.raises(UserError, match="no host"):
        check_bus_url("redis:///0")
