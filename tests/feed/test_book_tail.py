"""`tickwire tail --book SYMBOL` with the real command against a real server process, and its
ladder's layout."""

from __future__ import annotations

import subprocess

import numpy as np
from _support import serve_process, tickwire_cmd

from tickwire.feed.cli.tail_book import ladder
from tickwire.feed.client.book import Book
from tickwire.feed.protocol.book import LEVEL_ROW


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tickwire_cmd(*args), capture_output=True, text=True, timeout=60)


def test_tail_book_prints_live_ladders_of_the_servers_book() -> None:
    with serve_process("--drain-min-s", "0", "--book-depth", "20") as (_, url):
        out = _run("tail", "--book", "aapl", "--url", url, "--count", "3")
        assert out.returncode == 0, out.stderr
        blocks = [b for b in out.stdout.split("\n\n") if b.strip()]
        assert len(blocks) == 3
        seqs = []
        for block in blocks:
            head, columns, *rows = block.splitlines()
            assert head.startswith("AAPL ") and "spread" in head and "imbalance" in head
            assert columns.split() == ["size", "bid", "|", "ask", "size"]
            assert 5 <= len(rows) <= 10
            best_bid, best_ask = float(rows[0].split()[1]), float(rows[0].split()[3])
            assert best_bid < best_ask
            seqs.append(int(head.split("book seq ")[1].split()[0]))
        assert seqs == sorted(seqs) and seqs[0] < seqs[-1]
        closes = [ln for ln in _run("stats", "--url", url).stdout.splitlines() if "closes" in ln]
        assert closes and closes[0].split()[1:] == ["1000=1"], closes  # it said goodbye
        off = _run("tail", "--url", url)
        assert off.returncode == 2 and "--book SYMBOL" in off.stderr
    with serve_process("--book-depth", "0") as (_, url):  # a server without books
        none = _run("tail", "--book", "AAPL", "--url", url)
        assert none.returncode == 2 and "--book-depth" in none.stderr
        assert "Traceback" not in none.stderr


def test_ladder_lines_up_bids_and_asks_best_first() -> None:
    bids = np.array([(100.25, 300), (100.0, 50)], LEVEL_ROW)
    asks = np.array([(100.5, 100)], LEVEL_ROW)
    text = ladder(Book("X", bids, asks, 7, 0, 20), 10)
    head, _, first, second = text.splitlines()
    assert head == "X  00:00:00.000000  book seq 7  spread 0.25  imbalance +0.50"
    assert first.split() == ["300", "100.25", "|", "100.50", "100"]
    assert second.split() == ["50", "100.00", "|"]


def test_the_capacity_check_counts_books() -> None:
    """5,000 symbols run without books; with them generation is ~10x costlier: refused, and
    the one line says which flag helps."""
    out = _run("serve", "--port", "0", "--symbols", "5000", "--book-depth", "20")
    assert out.returncode == 2, out.stderr
    assert "--book-depth 0" in out.stderr and "Traceback" not in out.stderr


def test_a_bad_book_depth_is_one_line() -> None:
    out = _run("serve", "--port", "0", "--book-depth", "1001")
    assert out.returncode == 2
    assert "book depth must be from 0 to 1000, got 1001" in out.stderr
    assert "Traceback" not in out.stderr
