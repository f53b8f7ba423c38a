"""The bench's rows as a markdown table, and that table written into a README between markers.

`render` turns one run's rows and notes into markdown: a line naming the date, the machine and
the run, the table, then the notes. `splice` replaces whatever sits between `BEGIN` and `END` in
a document with it, so rerunning `tickwire bench --update-readme README.md` replaces the figures
instead of adding to them. `check_markers` runs before any measuring, so a file without markers
is a one-line error up front, not after minutes of measuring. Imports nothing from tickwire but
the table helpers and `UserError`.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
from pathlib import Path

from tickwire.simulators.errors import UserError

from ._table import Row, fmt, mark

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"


def machine() -> str:
    """What the figures were measured on: CPUs, their model, OS, Python, load when it started."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = " ".join(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    cpus = f"{os.cpu_count()} CPUs" + (f" ({model})" if model else "")
    load = ""
    if hasattr(os, "getloadavg"):
        load = f", load average {os.getloadavg()[0]:.1f} at the start"
    return (
        f"{cpus}, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}{load}"
    )


def _cell(text: str) -> str:
    """A table cell: pipes escaped, one line."""
    return " ".join(text.replace("|", "\\|").split())


def render(rows: list[Row], notes: list[str], *, command: str, when: str, where: str) -> str:
    """The markdown block: a header line, the table, then the notes as a list."""
    lines = [
        f"Measured by `{command}` on {when}, {where}.",
        "",
        "| figure | tickwire | baseline in the same run | ratio | target |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        cells: tuple[str, ...]
        if r["status"] != "ok":
            note = str(r.get("note", r["status"])).splitlines()[0][:120]
            cells = (r["name"], f"n/a ({note})", "", "", "")
        else:
            value = f"{fmt(r['value'])} {r['unit']}".strip()
            base = f"{r['baseline']} {fmt(r['baseline_value'])}" if r["baseline"] else ""
            ratio = ""
            if r["baseline"]:
                ratio = f"{fmt(r['ratio'])}x" if math.isfinite(r["ratio"]) else "n/a"
            cells = (r["name"], value, base, ratio, mark(r))
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    targets = [r for r in rows if r.get("met") is not None]
    lines.append("")
    if targets:
        met = sum(1 for r in targets if r["met"])
        lines.append(f"Targets met: {met} of {len(targets)}.")
    lines.append(
        "Ratio = tickwire / baseline, both measured in this run; n/a where the baseline is at "
        "or below zero or within its noise."
    )
    if notes:
        lines.append("")
        lines.extend(f"- {_cell(note)}" for note in notes)
    return "\n".join(lines) + "\n"


def today() -> str:
    """The date of the run, UTC."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")


def _span(document: str) -> tuple[int, int] | None:
    """Where the table goes: the end of the `BEGIN` line and the start of the `END` line after it.

    Only a line that is the marker alone counts, so prose that quotes a marker is left alone.
    """
    lines = document.splitlines(keepends=True)
    at = 0
    begin = None
    for line in lines:
        if begin is None and line.strip() == BEGIN:
            begin = at + len(line)
        elif begin is not None and line.strip() == END:
            return begin, at
        at += len(line)
    return None


def splice(document: str, table: str) -> str:
    """`document` with the lines between the marker lines replaced by `table` (markers kept)."""
    span = _span(document)
    if span is None:
        raise UserError(_missing())
    begin, end = span
    head = document[:begin] if document[:begin].endswith("\n") else document[:begin] + "\n"
    return f"{head}{table}{document[end:]}"


def check_markers(path: str) -> None:
    """Fail in one line, before any measuring, unless `path` is readable and holds both markers."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"--update-readme {path}: {exc.strerror or exc}") from None
    if _span(text) is None:
        raise UserError(f"--update-readme {path}: {_missing()}")


def update(path: str, table: str) -> None:
    """Write `table` between the markers of the file at `path` (atomically: a temp file, then a
    rename, so an interrupted write leaves the old file)."""
    p = Path(path)
    new = splice(p.read_text(encoding="utf-8"), table)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, p)


def _missing() -> str:
    return f"no {BEGIN} ... {END} markers: put both where the table belongs, each on its own line"
