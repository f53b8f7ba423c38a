"""The `tail --count 1` row's baseline: a plain `websockets` client doing the same, as a script.

Run as a file (`python _plain_tail.py URL SYMBOL`), not as a module of tickwire, so it loads
websockets and nothing of ours: connect, subscribe one symbol, print one tick, close, exit.
"""

import json
import sys

from websockets.sync.client import connect


def main(url: str, symbol: str) -> None:
    with connect(url, subprotocols=["tickwire.v1"]) as ws:  # type: ignore[list-item]
        ws.recv()  # welcome
        ws.send(json.dumps({"op": "subscribe", "symbols": [symbol], "id": 1}))
        while True:
            msg = json.loads(ws.recv())
            if msg.get("type") in ("snapshot", "ticks") and msg["ticks"]:
                print(json.dumps(msg["ticks"][0]))
                return


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
