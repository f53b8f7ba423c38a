"""The transport and the connection front: sockets, the HTTP front (h11), the WebSocket core
(wsproto), the trio shell around one accepted socket, the server's socket registry and the drain.

May import: the standard library, h11, wsproto, and (only in `transport` and `connection`, the
trio shell) trio. Never the hub, the bus, the venues, the client or the CLI; `http`, `websocket`,
`registry` and `drain` are sans-IO (no trio).
"""
