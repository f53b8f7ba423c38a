"""The trio shell of one connection: one task waits to write, and no task cancels another's
scope (the reader and the writer signal with events; a shed handshake is woken by
notify_closing before its socket is closed).
"""

from __future__ import annotations

import ast
import json
import pathlib
import socket

import trio
from trio_websocket import wrap_client_stream

from tickwire.feed.server.server import Server, ServerConfig

SHELL = pathlib.Path(__file__).parents[2] / "feed" / "ws"
SHELL_MODULES = ("connection.py", "pump.py", "opening.py")


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


async def test_a_backlogged_connection_s_tasks_all_live_under_its_own_task(nursery, autojump_clock):
    """A reader that stops reading leaves bytes in the outbox (BACKLOG): the task that waits to
    send them is the connection's own (`Connection.run`), and its only other task, the reader,
    is its child; none lives in the server's nursery beside it (the old flusher did)."""
    srv = Server(ServerConfig(port=0, heartbeat_ms=0, stall_ms=60_000, activity=5.0))
    await nursery.start(srv.run)
    s, c = socket.socketpair()
    for sock in (s, c):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    nursery.start_soon(srv.handle_socket, s, ("127.0.0.1", 0))
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(c))
    ws = await wrap_client_stream(nursery, stream, "localhost", "/v1", message_queue_size=0)
    assert json.loads(await ws.get_message())["type"] == "welcome"
    await ws.send_message(json.dumps({"op": "subscribe", "symbols": ["*"]}))
    (conn,) = srv.connections
    with trio.fail_after(30):
        while not conn.core.outbox:
            await trio.sleep(0.01)
    # The socket's own task runs `Connection.run` (here through `Server.handle_socket`).
    ours = [t for t in _tasks(trio.lowlevel.current_root_task()) if "tickwire.feed.ws" in t.name]
    assert [t.name for t in ours] == ["tickwire.feed.ws.pump.read"]
    owner = ours[0].parent_nursery.parent_task
    assert owner.name.endswith(("Server.handle_socket", "Connection.run")), owner.name
    await ws.aclose()
