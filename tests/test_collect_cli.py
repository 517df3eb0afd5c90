"""`edge collect` as a user runs it: a subprocess, its exit codes, /healthz and /metrics, SIGTERM."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from collect_support import Device, query
from mqtt_support import MOSQUITTO, Mosquitto, free_port, wait_until

from edgetally.cli import main

RUN = "import sys; from edgetally.cli import main; sys.exit(main(sys.argv[1:]))"
try:
    import psycopg  # noqa: F401

    NO_PSYCOPG = False
except ImportError:
    NO_PSYCOPG = True
_NEEDS_PSYCOPG = pytest.mark.skipif(
    NO_PSYCOPG, reason="psycopg not installed (pip install 'edgetally[collect]'): it checks the PostgreSQL URL"
)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--db", "mysql://db/counts"], "expected sqlite:///path.db or postgresql://"),
        (["--db", "sqlite:///"], "expected sqlite:///path/to/file.db"),
        (["--share", "a/b"], "share_group"),
        (["--mqtt", "http://broker"], "expected scheme mqtt:// or mqtts://"),
        pytest.param(
            ["--db", "postgresql://x@127.0.0.1/db?sslmode=sometimes"],
            'invalid sslmode value: "sometimes"',
            marks=_NEEDS_PSYCOPG,
        ),
        pytest.param(
            ["--db", "postgresql://x@127.0.0.1/db?bogus=1"],
            'invalid URI query parameter: "bogus"',
            marks=_NEEDS_PSYCOPG,
        ),
        (["--metrics", "nowhere"], "expected HOST:PORT"),
        (["--batch", "0"], "Invalid value for '--batch'"),
        (["--db", "sqlite:////proc/no/such/dir/counts.db"], "cannot open"),
        (
            ["--mqtt-password-file", "/nonexistent/pw", "--mqtt", "mqtt://u@127.0.0.1:1"],
            "mqtt.password_file: cannot read",
        ),
    ],
)
def test_bad_options_exit_2_with_a_clear_message(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path))
    # The default /metrics port may be taken on a shared machine (two test runs at once): its error would hide the
    # one under test, so the rows that are not about --metrics turn it off.
    metrics = [] if "--metrics" in args else ["--metrics", "off"]
    assert main(["collect", "--mqtt", "mqtt://127.0.0.1:1", *metrics, *args]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto not installed (scripts/test.sh installs it)")
def test_collect_runs_serves_metrics_and_stops_on_sigterm(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    port = free_port()
    env = {**os.environ, "STATE_DIRECTORY": str(tmp_path / "state")}
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN, "collect", "--mqtt", broker.url, "--metrics", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
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


@pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto not installed (scripts/test.sh installs it)")
def test_a_collector_killed_mid_stream_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """SIGKILL between receiving and committing: what was not committed was not acknowledged, so
    the broker re-sends it to the restarted collector (same client id); the primary key absorbs
    what was committed but not yet acknowledged."""
    broker = Mosquitto(tmp_path / "broker", persistence=True).start()
    env = {**os.environ, "STATE_DIRECTORY": str(tmp_path / "state")}
    port = free_port()
    args = [
        sys.executable,
        "-c",
        RUN,
        "collect",
        "--mqtt",
        broker.url,
        "--client-id",
        "c1",
        "--metrics",
        f"127.0.0.1:{port}",
        "--batch",
        "20",
    ]
    db_url = f"sqlite:///{tmp_path / 'state' / 'collect.db'}"
    first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    device = Device("gate-1", broker.url, tmp_path)
    second = None
    try:
        assert wait_until(lambda: _get(port, "/healthz") == (200, "ok\n"), 30)  # subscribed: its session exists
        device.emit(5)
        assert wait_until(lambda: _rows(db_url) == 5, 30)
        for _ in range(20):
            device.emit(10)
        first.kill()  # mid-stream, no goodbye
        first.wait(10)
        device.emit(50)  # queued by the broker for c1 meanwhile
        second = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        assert wait_until(lambda: _rows(db_url) == device.sent, 60), (_rows(db_url), device.sent)
    finally:
        device.close()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
        broker.stop()
    assert query(db_url, "SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM events") == [
        (device.sent, device.sent, 1, device.sent)
    ]


def _rows(db_url: str) -> int:
    try:
        return int(query(db_url, "SELECT count(*) FROM events")[0][0])
    except sqlite3.OperationalError:  # the database or its schema is not there yet
        return 0


def test_a_database_role_that_may_not_create_tables_is_a_clear_error(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS grafana_reader")
        conn.execute("CREATE ROLE grafana_reader LOGIN")
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path))
    url = pg_url.replace("postgresql://edgetally@", "postgresql://grafana_reader@")
    assert main(["collect", "--mqtt", "mqtt://127.0.0.1:1", "--db", url]) == 2
    err = capsys.readouterr().err
    assert "cannot set up the collector's tables: " in err and len(err.splitlines()) == 1, err
