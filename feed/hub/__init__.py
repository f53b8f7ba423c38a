"""The fan-out core, sans-IO: the history of published batches, subscriber cursors, the
every-update and latest-state takes, and the JSON bodies shared by every reader.

May import: numpy, the simulators' records, `tickwire.feed.protocol` and the WebSocket framing
(`tickwire.feed.ws.frames`, so a shared body is framed once). Never trio, the sockets, the
venues, the bus, the server, the client or the CLI.
"""
