"""`tickwire bench --only SUBSTRING`: the row families it runs, the rows it keeps, its errors."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from _support import tickwire_cmd

from tickwire.feed.bench import FAMILIES, Only
from tickwire.feed.bench._table import Row, unavailable
from tickwire.simulators.errors import UserError

README = Path(__file__).resolve().parents[2] / "README.md"


def table_rows() -> list[str]:
    """The row names of the README's last bench table."""
    text = README.read_text(encoding="utf-8")
    table = text.split("\n<!-- bench:begin -->\n", 1)[1].split("\n<!-- bench:end -->", 1)[0]
    lines = [ln for ln in table.splitlines() if ln.startswith("| ")][1:]  # no header
    return [ln.split(" | ")[0].removeprefix("| ").replace("\\|", "|") for ln in lines]


def families(*words: str) -> list[str]:
    only = Only(list(words))
    return [f for f in FAMILIES if only.family(f)]


def test_without_only_everything_runs() -> None:
    assert families() == list(FAMILIES)


def test_a_row_name_runs_its_family_alone() -> None:
    assert families("fan-out N=100") == ["fan-out"]
    assert families("encode") == ["encode/decode"]
    assert families("ENCODE 50 ticks, binary") == ["encode/decode"]  # case ignored
    assert families("handshake", "RSS") == ["memory", "handshake"]  # measured in table order
    assert families("dashboard default watchlist") == ["dashboard", "dashboard on a real server"]


def row(name: str) -> Row:
    return {**unavailable(name, ""), "status": "ok"}  # type: ignore[typeddict-item]


def test_only_the_matching_rows_are_kept_and_errors_always() -> None:
    got = [row("fan-out N=100 '*', JSON: ticks/s"), row("fan-out N=10 '*', JSON: ticks/s")]
    assert Only(["fan-out N=100 '*'"]).rows("fan-out", got) == got[:1]
    failed = unavailable("fan-out", "error: boom", status="error")
    assert Only(["fan-out N=100 '*'"]).rows("fan-out", [failed]) == [failed]
    both = [row("encode 50 ticks, JSON"), row("decode 50 ticks, JSON")]
    assert Only(["decode"]).rows("encode/decode", both) == both[1:]  # not the family's name
    # A family's name that is in none of its rows keeps them all.
    rss = [row("RSS per idle subscribed connection")]
    assert Only(["memory"]).rows("memory", rss) == rss
    assert Only(["memory"]).rows("every update, history, replay", both) == []
    assert Only(None).rows("encode/decode", both) == both


def test_a_substring_that_names_nothing_is_one_precise_error() -> None:
    with pytest.raises(UserError, match=r"--only 'N=7' names no row family .*families: generator"):
        Only(["encode", "N=7"])


def test_every_row_of_the_last_run_can_be_measured_alone() -> None:
    names = table_rows()
    assert len(names) > 100
    for name in names:
        assert families(name), name
    for family, starts in FAMILIES.items():  # no family's row names went stale
        lowered = tuple(s.lower() for s in starts)
        assert any(n.lower().startswith(lowered) for n in names), family


@pytest.mark.timeout(60)
def test_the_real_command_measures_one_family(tmp_path: Path) -> None:
    pytest.importorskip("picows")
    pytest.importorskip("websockets")
    argv = ["bench", "--quick", "--json", "--only", "decode", "--only", "encode 50 ticks, binary"]
    out = subprocess.run(tickwire_cmd(*argv), capture_output=True, text=True, timeout=50)
    assert out.returncode == 0, out.stderr[-3000:]
    names = [r["name"] for r in json.loads(out.stdout)["rows"]]
    assert names and all(re.match(r"(decode 50 ticks|encode 50 ticks, binary)", n) for n in names)
    assert any(n.startswith("decode") for n in names) and "encode 50 ticks, binary" in names
    readme = tmp_path / "README.md"
    out = subprocess.run(
        tickwire_cmd("bench", "--only", "encode", "--update-readme", str(readme)),
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        "tickwire: error: --only measures some rows, --update-readme writes the README's whole "
        "table: drop one of them"
    ]
