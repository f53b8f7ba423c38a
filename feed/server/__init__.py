"""The server: composes a source (the market, a replay, a bus reader) with its sinks (the hub, a
bus producer) and its listeners, and runs them under trio; the bus roles (`gateway`), the worker
supervisor and its children, the plain-HTTP routes, metrics and operator logs.

The one package that wires the others together. May import every package of the feed but the
client and the CLI.
"""
