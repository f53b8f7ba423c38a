"""Helpers shared by every test folder: the real `tickwire` command and `tickwire serve`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def tickwire_cmd(*args: str) -> list[str]:
    """The real console script, from the same environment as the tests."""
    script = os.path.join(os.path.dirname(sys.executable), "tickwire")
    return (
        [script, *args]
        if os.path.exists(script)
        else [sys.executable, "-m", "tickwire.feed.cli.main", *args]
    )


def serve_config(*argv: str) -> Any:
    """The `ServerConfig` that `tickwire serve --port 0 --heartbeat-ms 0 ARGV` runs with (flags,
    TICKWIRE_* variables and defaults resolved as the command does), for in-process servers."""
    from tickwire.feed.cli import config
    from tickwire.feed.cli.main import build_parser
    from tickwire.feed.cli.serve import server_config
    from tickwire.feed.cli.serve_settings import SERVE

    args = build_parser("serve").parse_args(["serve", "--port", "0", "--heartbeat-ms", "0", *argv])
    config.resolve(SERVE, args)
    return server_config(args)


@contextmanager
def serve_process(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Run `tickwire serve --port 0 ARGS` and yield (process, url) once it listens."""
    proc = subprocess.Popen(
        tickwire_cmd("serve", *(args if "--port" in args else ("--port", "0", *args))),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if " on ws" not in line:
            proc.kill()
            raise AssertionError(
                f"server did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}"
            )
        url = line.split(" on ", 1)[1].split()[0]
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def metric_samples(text: str) -> dict[str, float]:
    """{sample name with its sorted labels: value} of a /metrics page, parsed by
    prometheus_client (the parser Prometheus' own Python client uses)."""
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out
