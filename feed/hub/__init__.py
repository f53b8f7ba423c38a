"""The fan-out core, sans-IO: the history of published batches, subscriber cursors, the
every-update and latest-state takes, and the JSON bodies shared by every reader.

May import: numpy, the simulators' records and `tickwire.feed.protocol`. Never trio, the
transport, the venues, the bus, the server, the client or the CLI.
"""
