"""The trio shell of one connection: one task reads, a writer exists only while something
must wait for the socket, and no task cancels another's scope (they signal with events; a
shed handshake is woken by notify_closing before its socket is closed).
"""

from __future__ import annotations

import ast
import json
import pathlib
import socket

import trio
from trio_websocket import wrap_client_stream
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Message, Request, TextMessage

from tickwire.feed.server.server import Server, ServerConfig

SHELL = pathlib.Path(__file__).parents[2] / "feed" / "ws"
SHELL_MODULES = ("connection.py", "pump.py", "opening.py", "clock.py")


def test_the_shell_never_cancels_or_moves_a_scope_it_did_not_open_here():
    """No `.cancel()`, no `.deadline =`, no cancel scope kept in an attribute: the only scopes
    are `with trio.move_on_*` blocks around the task's own waits."""
    found = []
    for name in SHELL_MODULES:
        tree = ast.parse((SHELL / name).read_text())
        for node in ast.walk(tree):
            call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            if call and node.func.attr in ("cancel", "CancelScope"):  # type: ignore[attr-defined]
                found.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == "deadline":
                    found.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
    assert not found, found


def _tasks(task: trio.lowlevel.Task) -> list[trio.lowlevel.Task]:
    out = [task]
    for nursery in task.child_nurseries:
        for child in nursery.child_tasks:
            out += _tasks(child)
    return out


def _shell_tasks() -> list[trio.lowlevel.Task]:
    return [t for t in _tasks(trio.lowlevel.current_root_task()) if "tickwire.feed.ws" in t.name]


def _writers() -> list[trio.lowlevel.Task]:
    return [t for t in _shell_tasks() if t.name.endswith("Connection._write")]


def _tiny_socketpair() -> tuple[socket.socket, socket.socket]:
    s, c = socket.socketpair()
    for sock in (s, c):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return s, c


async def test_a_backlogged_connection_has_one_writer_that_ends_with_it(nursery, autojump_clock):
    """A reader that stops reading leaves bytes in the outbox (BACKLOG): one writer task waits
    to send them, in the server's nursery (the connection's own task only reads, and opens no
    nursery); when the connection ends, so does its writer."""
    srv = Server(ServerConfig(port=0, heartbeat_ms=0, stall_ms=60_000, activity=5.0))
    await nursery.start(srv.run)
    s, c = _tiny_socketpair()
    nursery.start_soon(srv.handle_socket, s, ("127.0.0.1", 0))
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(c))
    ws = await wrap_client_stream(nursery, stream, "localhost", "/v1", message_queue_size=0)
    assert json.loads(await ws.get_message())["type"] == "welcome"
    await ws.send_message(json.dumps({"op": "subscribe", "symbols": ["*"]}))
    (conn,) = srv.connections
    with trio.fail_after(30):
        while not conn.core.outbox:
            await trio.sleep(0.01)
    (writer,) = _writers()
    owner = writer.parent_nursery.parent_task
    assert owner.name.endswith("Server.run"), owner.name
    everything = _tasks(trio.lowlevel.current_root_task())
    reader = [t for t in everything if t.name.endswith("handle_socket")]
    assert [t.child_nurseries for t in reader] == [[]]
    await ws.aclose()
    with trio.fail_after(30):
        while srv.connections:
            await trio.sleep(0.01)
        await trio.testing.wait_all_tasks_blocked()
    assert not _writers()


async def test_the_writer_ends_once_the_socket_took_the_backlog(nursery, autojump_clock):
    """Replies larger than the socket's buffer start a writer; once the client has read them
    all, the writer is gone and the connection is one task again (it stays open)."""
    srv = Server(ServerConfig(port=0, heartbeat_ms=0, activity=0.01))
    await nursery.start(srv.run)
    s, c = _tiny_socketpair()
    nursery.start_soon(srv.handle_socket, s, ("127.0.0.1", 0))
    client = WSConnection(ConnectionType.CLIENT)
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(c))
    await stream.send_all(client.send(Request(host="localhost", target="/v1")))
    with trio.fail_after(30):
        while not any(isinstance(e, AcceptConnection) for e in client.events()):
            client.receive_data(await stream.receive_some(4096))
    request = json.dumps({"op": "symbols"})
    await stream.send_all(b"".join(client.send(Message(data=request)) for _ in range(4)))
    with trio.fail_after(30):
        while not srv.connections or not _writers():
            await trio.sleep(0.01)
        replies, text = 0, ""
        while replies < 4:
            client.receive_data(await stream.receive_some(4096))
            for event in client.events():
                if isinstance(event, TextMessage):
                    text += event.data
                    if event.message_finished:
                        replies += json.loads(text)["type"] == "symbols"
                        text = ""
        await trio.testing.wait_all_tasks_blocked()
    assert not _writers()
    # The reader runs as `Server.handle_socket`; the server's clock may wait for an alarm.
    assert [t.name for t in _shell_tasks() if not t.name.endswith("Clock._run")] == []
    assert len(srv.connections) == 1
    await stream.aclose()
