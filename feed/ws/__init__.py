"""The transport and the connection front: sockets, the HTTP front (h11), the WebSocket phase of
every connection's machine (wsproto; `websocket`, `frames`), the trio shell around one accepted
socket (`connection`, with `opening` for the handshake, `pump` for its reader and writer, and
`clock`, the one task that rings every connection's timers), the server's socket registry and
the drain.

May import: the standard library, h11, wsproto, and (only in `transport`, `connection`,
`opening`, `pump` and `clock`, the trio shell) trio. Never the hub, the bus, the venues, the
client or the CLI; `http`, `websocket`, `frames`, `registry` and `drain` are sans-IO (no trio).
"""
