"""The client library: `async with connect(url) as feed`, requests, and `async for event in feed`
(`feed`); opening a connection (`dial`); what it yields and raises (`events`); where it is in
the server's stream, sans-IO (`stream`); requests awaiting replies (`replies`) and the events
awaiting the user (`queue`). Users import it from `tickwire.feed` (its `__all__`).

May import: `tickwire.feed.protocol`, the shared helpers, trio and trio-websocket. Never any
server module (`ws`, `v1`, `hub`, `bus`, `venues`, `server`) and never the CLI.
"""
