"""`edge collect` as a user runs it: a subprocess, its exit codes, /healthz and /metrics, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from collect_support import Device, query
from mqtt_support import MOSQUITTO, Mosquitto, free_port, wait_until

from edgetally.cli import main

RUN = "import sys; from edgetally.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.mark.parametrize(("args", "message"), [
    (["--db", "mysql://db/counts"], "expected sqlite:///path.db or postgresql://"),
    (["--db", "sqlite:///"], "expected sqlite:///path/to/file.db"),
    (["--share", "a/b"], "share_group"),
    (["--mqtt", "http://broker"], "expected scheme mqtt:// or mqtts://"),
    (["--db", "postgresql://x@127.0.0.1/db?sslmode=sometimes"], 'invalid sslmode value: "sometimes"'),
    (["--db", "postgresql://x@127.0.0.1/db?bogus=1"], 'invalid URI query parameter: "bogus"'),
    (["--metrics", "nowhere"], "expected HOST:PORT"),
    (["--batch", "0"], "Invalid value for '--batch'"),
])
def test_bad_options_exit_2_with_a_clear_message(args: list[str], message: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path))
    assert main(["collect", "--mqtt", "mqtt://127.0.0.1:1", *args]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto not installed (scripts/test.sh installs it)")
def test_collect_runs_serves_metrics_and_stops_on_sigterm(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    port = free_port()
    env = {**os.environ, "STATE_DIRECTORY": str(tmp_path / "state")}
    proc = subprocess.Popen([sys.executable, "-c", RUN, "collect", "--mqtt", broker.url, "--metrics", f"127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    device = None
    try:
        assert wait_until(lambda: _get(port, "/healthz") == (200, "ok\n"), 30)
        device = Device("gate-1", broker.url, tmp_path)
        device.emit(5)
        assert wait_until(lambda: 'edgetally_collect_stored_total{kind="events"} 5' in _get(port, "/metrics")[1], 20)
    finally:
        if device is not None:
            device.close()
        proc.send_signal(signal.SIGTERM)
        log, _ = proc.communicate(timeout=30)
        broker.stop()
    assert proc.returncode == 0, log
    assert "collect: stopped (5 events stored, 0 refused)" in log
    db_url = f"sqlite:///{tmp_path / 'state' / 'collect.db'}"  # the default database
    assert query(db_url, "SELECT device_id, count(*) FROM events GROUP BY 1") == [("gate-1", 5)]


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""
