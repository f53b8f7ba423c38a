"""A scenario's LULD bands on the bus, sans-IO: the `u` field of a write's first entry (each
band change, `simulators.scenario.BAND_DTYPE`, after `at` records of the write, as the `s`
field's status changes are) and `{ns}:bands`, a hash of each symbol's bands now (symbol id ->
its last band record; a cleared band is deleted), which the write script keeps and a gateway
starts from. `codec.py` owns the rest of the format.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from tickwire.feed.bus.codec import BusFormatError, decode_at, encode_at
from tickwire.simulators.scenario import BAND_DTYPE

BAND_AT_DTYPE = np.dtype([("at", "<u8"), ("band", (np.void, BAND_DTYPE.itemsize))])


def bands_key(namespace: str) -> str:
    """Each symbol's LULD bands now: where a gateway starts from."""
    return f"{namespace}:bands"


def encode_bands(bands: list[tuple[int, NDArray[np.void]]]) -> bytes:
    """(records before, `BAND_DTYPE` records) pairs as one `u` field; b"" for none."""
    return encode_at(bands, BAND_AT_DTYPE, "band")


def decode_bands(raw: bytes) -> tuple[NDArray[np.uint64], NDArray[np.void]]:
    """A `u` field back as (records before each, `BAND_DTYPE` records)."""
    return decode_at(raw, BAND_AT_DTYPE, "band", BAND_DTYPE, "band changes")


def decode_bands_now(fields: Mapping[bytes, bytes]) -> NDArray[np.void]:
    """The `{ns}:bands` hash as band records, by symbol id."""
    raw = b"".join(v for _, v in sorted((int(k), v) for k, v in fields.items()))
    if len(raw) % BAND_DTYPE.itemsize:
        raise BusFormatError(f"a bands record that is not {BAND_DTYPE.itemsize} bytes")
    return np.frombuffer(raw, BAND_DTYPE).copy()


class BandsSeen:
    """The symbols a gateway has published bands for: what the bands of a gap change."""

    def __init__(self) -> None:
        self.symbols: set[int] = set()

    def note(self, records: NDArray[np.void]) -> NDArray[np.void]:
        """`records` (band changes about to be published), noted."""
        syms, indicators = records["sym"].tolist(), records["indicator"].tolist()
        for sym, indicator in zip(syms, indicators, strict=True):
            if indicator:
                self.symbols.add(sym)
            else:
                self.symbols.discard(sym)
        return records

    def after_gap(self, now: NDArray[np.void], ts: int) -> NDArray[np.void]:
        """The changes from what was published to the producer's bands `now` (the changes in
        between are lost): every band of `now` as it stands, a clear at `ts` for each symbol
        published with bands that has none now; noted."""
        gone = sorted(self.symbols - set(now["sym"].tolist()))
        clears = np.zeros(len(gone), BAND_DTYPE)
        clears["ts"], clears["sym"], clears["up"], clears["down"] = ts, gone, np.nan, np.nan
        return self.note(np.concatenate((now, clears)))
