"""The Redis Streams bus: one producer's flushes to any number of gateways (`api` gathers what the
rest of the feed uses). `codec` and `lease` are sans-IO; the producer, reader and lease holder are
the trio shell, and need the `redis` extra (coredis, hiredis).

May import: `tickwire.feed.protocol`, the shared helpers (`urls`, `backoff`), coredis and hiredis.
Never the server, the transport, the venues, the client or the CLI.
"""
