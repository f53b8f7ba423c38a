"""The real `tickwire` command: serve and tail as subprocesses, and one-line user errors."""

from __future__ import annotations

import json
import signal
import subprocess

from _support import serve_process, tickwire_cmd


def _run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tickwire_cmd(*args), capture_output=True, text=True, timeout=timeout)


def test_tail_prints_ticks_and_serve_stops_cleanly_on_sigterm():
    with serve_process("--drain-min-s", "0") as (proc, url):
        out = _run("tail", "AAPL", "MSFT", "--url", url, "--count", "5")
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert len(lines) == 5 and all(line.split()[1] in ("AAPL", "MSFT") for line in lines)
        js = _run("tail", "*", "--url", url, "--count", "3", "--json", "--binary")
        ticks = [json.loads(line) for line in js.stdout.splitlines()]
        assert len(ticks) == 3 and all(t["bid"] < t["ask"] for t in ticks)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        err = proc.stderr.read()
        assert "Traceback" not in err
        assert "disconnected: code 1000" in err  # tail closed normally


def test_user_errors_are_one_line_without_traceback():
    with serve_process() as (_, url):
        bad = _run("tail", "NOPE", "--url", url)
        assert bad.returncode == 2 and "unknown symbol 'NOPE'" in bad.stderr
        taken = _run("serve", "--port", url.rsplit(":", 1)[1].split("/")[0])
        assert taken.returncode == 2 and "cannot listen" in taken.stderr
    down = _run("tail", "AAPL", "--url", "ws://127.0.0.1:9/v1")
    assert down.returncode == 2 and "cannot connect" in down.stderr
    flag = _run("serve", "--port", "70000")
    assert flag.returncode == 2 and "port must be from 0 to 65535" in flag.stderr
    cert = _run("serve", "--port", "0", "--certfile", "/nonexistent.pem")
    assert cert.returncode == 2 and "cannot load certificate" in cert.stderr
    for result in (bad, taken, down, flag, cert):
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) <= 2


def test_help_teaches():
    out = _run("--help")
    assert out.returncode == 0
    for command in ("serve", "tail"):
        assert command in out.stdout
    assert "tickwire tail" in _run("serve", "--help").stdout


def test_tail_exits_0_on_ctrl_c():
    with serve_process() as (_, url):
        tail = subprocess.Popen(
            tickwire_cmd("tail", "*", "--url", url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert tail.stdout is not None and tail.stdout.readline()  # ticks are flowing
        tail.send_signal(signal.SIGINT)
        assert tail.wait(timeout=10) == 0
        assert "Traceback" not in (tail.stderr.read() if tail.stderr else "")


def test_client_survives_the_server_process_being_killed_and_restarted():
    import trio

    from tickwire.feed import Batch, Gap, connect

    async def main():
        with serve_process() as (proc, url):
            port = url.rsplit(":", 1)[1].split("/")[0]
            with trio.fail_after(60):
                async with connect(url, backoff_initial_s=0.05, backoff_max_s=0.5) as feed:
                    await feed.subscribe(["AAPL", "MSFT"])
                    proc.kill()  # SIGKILL: no close frame, the TCP connection just dies
                    proc.wait()
                    with serve_process("--port", port) as _:
                        gap = None
                        async for event in feed:
                            if isinstance(event, Gap):
                                gap = event
                            elif (
                                isinstance(event, Batch)
                                and gap is not None
                                and event.kind == "ticks"
                            ):
                                break
                        # "restarted" once the server's welcome carries its run's epoch
                        assert gap.reason in ("reconnected", "restarted")
                        assert feed.subscription == ["AAPL", "MSFT"]

    trio.run(main)
