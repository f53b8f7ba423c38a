"""The client's errors for a refused or mismatched handshake: typed, one line, within the timeout.

Against an in-process `Server` (library) and a real `tickwire serve` (the `tail` command).
"""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trustme
from _support import serve_process, tickwire_cmd
from trio.testing import MockClock

from tickwire.feed import AuthError, ConnectError, ProtocolError, connect
from tickwire.feed.client.stream import resolve_symbols
from tickwire.feed.server.server import Server, ServerConfig

TOKEN = "abc"


@pytest.fixture
async def guarded(nursery: trio.Nursery) -> AsyncIterator[Server]:
    """A server that wants a token."""
    srv = Server(ServerConfig(port=0, tokens=(TOKEN,)))
    await nursery.start(srv.run)
    yield srv


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path, Path]:
    """A throwaway CA, the server's key and certificate, and the CA's PEM for --cafile."""
    ca = trustme.CA()
    folder = tmp_path_factory.mktemp("tls")
    server_pem = folder / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    ca_pem = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    return ca, server_pem, ca_pem


@pytest.mark.parametrize("reconnect", [False, True])
async def test_401_without_a_token_is_an_auth_error(guarded: Server, reconnect: bool) -> None:
    with trio.fail_after(10), pytest.raises(AuthError, match="wants a token: pass --token"):
        async with connect(guarded.url, reconnect=reconnect):
            pass


async def test_401_with_a_wrong_token_is_an_auth_error(guarded: Server) -> None:
    with trio.fail_after(10), pytest.raises(AuthError, match="refused the token") as err:
        async with connect(guarded.url, token="wrong", reconnect=False):
            pass
    assert "wrong" not in str(err.value)  # a token never shows up in a message


async def test_the_right_token_connects(guarded: Server) -> None:
    with trio.fail_after(10):
        async with connect(guarded.url, token=TOKEN, reconnect=False) as feed:
            assert feed.welcome["type"] == "welcome"


@pytest.mark.parametrize("path", ["", "/", "/v2"])
async def test_404_names_the_feed_url(guarded: Server, path: str) -> None:
    base = guarded.url.removesuffix("/v1")
    with trio.fail_after(10), pytest.raises(ConnectError) as err:
        async with connect(base + path, token=TOKEN, reconnect=False):
            pass
    assert not isinstance(err.value, AuthError)
    assert f"the feed is at {guarded.url}" in str(err.value)
    assert "HTTP 404" in str(err.value)


async def test_a_refused_socket_is_released(guarded: Server) -> None:
    """Many refusals in a row: each raises, none hangs, and the next one still works."""
    with trio.fail_after(20):
        for _ in range(20):
            with pytest.raises(AuthError):
                async with connect(guarded.url, reconnect=False):
                    pass
        async with connect(guarded.url, token=TOKEN, reconnect=False):
            pass


async def test_untrusted_certificate_says_so_and_names_cafile(
    nursery: trio.Nursery, ca: tuple[trustme.CA, Path, Path]
) -> None:
    _ca, server_pem, ca_pem = ca
    srv = Server(ServerConfig(port=0, certfile=str(server_pem)))
    await nursery.start(srv.run)
    with trio.fail_after(10), pytest.raises(ConnectError, match="certificate verify failed") as e:
        async with connect(srv.url, reconnect=False):
            pass
    assert "--cafile" in str(e.value)
    trusted = ssl.create_default_context(cafile=str(ca_pem))
    with trio.fail_after(10):
        async with connect(srv.url, ssl_context=trusted, reconnect=False) as feed:
            await feed.subscribe(["AAPL"])


# The next three run on virtual time: the client's handshake deadline and our measurement read
# one clock, which stands still while bytes move on loopback and jumps once every task waits
# (threshold 5 ms). A hang jumps straight to the deadline, so "within the timeout" is exact and
# a loaded machine cannot stretch it.


async def test_wss_on_a_plain_server_fails_within_the_timeout(
    nursery: trio.Nursery, mock_clock: MockClock
) -> None:
    mock_clock.autojump_threshold = 0.005
    server = Server(ServerConfig(port=0))
    await nursery.start(server.run)
    url = server.url.replace("ws://", "wss://")
    t0 = trio.current_time()
    with trio.fail_after(10), pytest.raises(ConnectError, match="use ws://"):
        async with connect(url, handshake_timeout_s=2, reconnect=False):
            pass
    assert trio.current_time() - t0 <= 2 + 1e-9


async def test_ws_on_a_tls_server_fails_within_the_timeout(
    nursery: trio.Nursery, ca: tuple[trustme.CA, Path, Path], mock_clock: MockClock
) -> None:
    mock_clock.autojump_threshold = 0.005
    _ca, server_pem, _ = ca
    srv = Server(ServerConfig(port=0, certfile=str(server_pem)))
    await nursery.start(srv.run)
    url = srv.url.replace("wss://", "ws://")
    t0 = trio.current_time()
    with trio.fail_after(10), pytest.raises(ConnectError, match="use wss://"):
        async with connect(url, handshake_timeout_s=1.5, reconnect=False):
            pass
    assert trio.current_time() - t0 <= 1.5 + 1e-9


async def test_a_silent_listener_fails_within_the_timeout(mock_clock: MockClock) -> None:
    """A port that accepts TCP and never answers (the worst case) is bounded too."""
    mock_clock.autojump_threshold = 0.005
    with trio.socket.socket() as listener:
        await listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        t0 = trio.current_time()
        with trio.fail_after(10), pytest.raises(ConnectError, match="within 1 s"):
            async with connect(f"ws://127.0.0.1:{port}/v1", handshake_timeout_s=1):
                pass
        assert trio.current_time() - t0 == pytest.approx(1)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8765/v1", "ws://", "ws://127.0.0.1:99999/v1", "127.0.0.1:8765"]
)
async def test_a_bad_url_is_a_connect_error(url: str) -> None:
    with trio.fail_after(5), pytest.raises(ConnectError, match="bad URL"):
        async with connect(url):
            pass


def test_symbols_resolve_case_insensitively_and_suggest() -> None:
    universe = ["AAPL", "MSFT", "BRK.B", "APP"]
    assert resolve_symbols(["aapl", "Msft", "brk.b", "*", "AAPL"], universe) == [
        "AAPL",
        "MSFT",
        "BRK.B",
        "*",
    ]
    with pytest.raises(ProtocolError) as err:
        resolve_symbols(["appl", "zzzzzz"], universe)
    assert err.value.code == "unknown_symbol"
    assert err.value.symbols == ("appl", "zzzzzz")
    assert "'appl' (did you mean " in err.value.message and "AAPL?" in err.value.message
    assert "symbols op" not in err.value.message


# --------------------------------------------------------------------------- the real command


def _tail(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """The real `tickwire tail`; `timeout` only stops a hung run (it asserts nothing on speed:
    the handshake deadlines are proven in virtual time by the tests above)."""
    return subprocess.run(
        tickwire_cmd("tail", *args), capture_output=True, text=True, timeout=timeout
    )


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_tail_against_a_token_server_is_one_line_and_exit_2() -> None:
    with serve_process("--token", TOKEN) as (_proc, url):
        out = _tail("AAPL", "--url", url, "--count", "1")
        assert out.returncode == 2
        assert "the server wants a token: pass --token" in _one_line(out.stderr)
        out = _tail("AAPL", "--url", url, "--token", "wrong", "--count", "1")
        assert out.returncode == 2 and "refused the token" in _one_line(out.stderr)
        out = _tail("AAPL", "--url", url.removesuffix("/v1"), "--token", TOKEN)
        assert out.returncode == 2
        assert f"no tickwire feed at / on {url.split('/')[2]}" in _one_line(out.stderr)
        assert f"the feed is at {url}" in out.stderr
        out = _tail("aapl", "--url", url, "--token", TOKEN, "--count", "1")
        assert out.returncode == 0 and " AAPL " in out.stdout


def test_tail_unknown_symbol_names_the_closest() -> None:
    with serve_process() as (_proc, url):
        out = _tail("appl", "--url", url)
    assert out.returncode == 2
    line = _one_line(out.stderr)
    assert "did you mean" in line and "AAPL" in line and "symbols op" not in line


def test_tail_tls_cafile_and_mismatches(ca: tuple[trustme.CA, Path, Path]) -> None:
    _ca, server_pem, ca_pem = ca
    with serve_process("--certfile", str(server_pem)) as (_proc, url):
        assert url.startswith("wss://")
        out = _tail("AAPL", "--url", url, "--count", "1")
        assert out.returncode == 2
        line = _one_line(out.stderr)
        assert "certificate verify failed" in line and "pass --cafile CA.pem" in line
        out = _tail("AAPL", "--url", url, "--cafile", str(ca_pem), "--count", "1")
        assert out.returncode == 0 and " AAPL " in out.stdout, out.stderr
        # The bound on how long this takes is the client's handshake timeout, checked in virtual
        # time by test_ws_on_a_tls_server_fails_within_the_timeout; here, the words and the exit.
        out = _tail("AAPL", "--url", url.replace("wss://", "ws://"), "--count", "1")
        assert out.returncode == 2 and "use wss://" in _one_line(out.stderr)
        out = _tail("AAPL", "--url", url, "--cafile", "/nonexistent/ca.pem")
        assert out.returncode == 2 and "cannot read --cafile" in _one_line(out.stderr)
