"""tickwire's own `/v1` connection, sans-IO: the WebSocket core plus what the client asked for
(subscription, throttle, `seq`, resume), as plain objects driven with bytes and time.

May import: `tickwire.feed.protocol`, `tickwire.feed.ws` (its sans-IO modules) and
`tickwire.feed.hub`. Never trio, the bus, the server, the client or the CLI.
"""
