"""`tickwire bench --markdown` and `--update-readme`: one run's table, written between markers."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import pytest
from _support import tickwire_cmd

from tickwire.feed.bench import _markdown as md
from tickwire.feed.bench._table import row, unavailable
from tickwire.simulators.errors import UserError

ROWS = [
    row("ticks/s", 300.0, "t/s", "plain", 100.0, higher=True, target=">= 2x"),
    row("RSS growth", 21.7, "KiB", "peer", -1e-11, higher=False, target="<= 16 KiB"),
    row("idle | CPU", 0.02, "core", higher=False),
    unavailable("web page", "not in --quick (starts a browser)"),
]


def table() -> str:
    return md.render(ROWS, ["a note"], command="tickwire bench --quick", when="D", where="M")


def test_render_is_one_markdown_table_with_its_date_and_machine() -> None:
    text = table()
    lines = text.splitlines()
    assert lines[0] == "Measured by `tickwire bench --quick` on D, M."
    head = lines.index("| figure | tickwire | baseline in the same run | ratio | target |")
    body = lines[head + 2 : head + 2 + len(ROWS)]
    assert lines[head + 1] == "|---|---|---|---|---|"
    assert body[0] == "| ticks/s | 300 t/s | plain 100 | 3x | ✓ >= 2x |"
    assert body[1] == "| RSS growth | 21.7 KiB | peer -1e-11 | n/a | ✗ <= 16 KiB |"
    assert body[2] == "| idle \\| CPU | 0.02 core |  |  |  |"  # a pipe in a name stays in its cell
    assert body[3] == "| web page | n/a (not in --quick (starts a browser)) |  |  |  |"
    for line in body:  # every row has the header's five cells
        assert len(line.replace("\\|", "").split("|")) == 7, line
    assert "Targets met: 1 of 2." in lines and lines[-1] == "- a note"
    assert math.isnan(ROWS[1]["ratio"])


def test_machine_names_cpus_os_and_python() -> None:
    where = md.machine()
    assert "CPUs" in where and "Python " in where


def test_splice_replaces_only_between_the_marker_lines_and_a_rerun_replaces_it() -> None:
    doc = (
        "# Title\n"
        f"Prose quoting `{md.BEGIN}` and `{md.END}` is not a marker.\n"
        f"{md.BEGIN}\nold figures\n{md.END}\n"
        "after\n"
    )
    once = md.splice(doc, table())
    assert once.startswith(doc.split(md.BEGIN + "\n")[0])  # the prose is untouched
    assert "old figures" not in once and once.endswith(f"{md.END}\nafter\n")
    assert once.count("| ticks/s |") == 1
    again = md.splice(once, md.render([ROWS[0]], [], command="c", when="E", where="N"))
    assert "on D, M." not in again and "on E, N." in again
    assert again.count("| ticks/s |") == 1


@pytest.mark.parametrize(
    "doc",
    ["no markers\n", f"{md.BEGIN}\nonly the start\n", f"{md.END}\n{md.BEGIN}\n", f"`{md.BEGIN}`\n"],
)
def test_a_document_without_both_marker_lines_is_refused(doc: str) -> None:
    with pytest.raises(UserError, match="markers"):
        md.splice(doc, table())


def test_update_writes_the_file(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"a\n{md.BEGIN}\n{md.END}\nb\n")
    md.update(str(readme), table())
    text = readme.read_text()
    assert text.startswith(f"a\n{md.BEGIN}\nMeasured by") and text.endswith(f"{md.END}\nb\n")
    assert [p.name for p in tmp_path.iterdir()] == ["README.md"]  # no temp file left


@pytest.mark.parametrize("content", [None, "# a README without markers\n"])
def test_update_readme_fails_in_one_line_before_measuring(tmp_path: Path, content: str | None):
    readme = tmp_path / "README.md"
    if content is not None:
        readme.write_text(content)
    out = subprocess.run(
        tickwire_cmd("bench", "--quick", "--markdown", "--update-readme", str(readme)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and out.stdout == ""  # nothing measured, nothing printed
    assert out.stderr.count("\n") == 1 and "--update-readme" in out.stderr, out.stderr


def test_json_and_markdown_are_exclusive() -> None:
    out = subprocess.run(
        tickwire_cmd("bench", "--json", "--markdown"), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and "not allowed with" in out.stderr
