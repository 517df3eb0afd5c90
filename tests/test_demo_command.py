"""`edge demo` end to end: scene -> INT8 conversion (converters) -> embedded broker -> runner over
MQTT -> counts vs exact ground truth. Real everything, a 20 s scene, --no-dashboard."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from edgetally.demo.compare import compare_counts, format_table

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
README_COMMAND = "edge demo --no-dashboard --seconds 20"
sys.path.insert(0, str(REPO / "scripts"))
import readme_outputs  # noqa: E402


def _need(*modules: str) -> None:
    for module in modules:
        pytest.importorskip(module, reason=f"`edge demo` needs {module} (extras ort, convert, broker)")


@pytest.mark.parametrize(
    "truth, counted, total_pct, abs_pct",
    [
        ({"car": {"in": 10, "out": 10}}, {"car": {"in": 10, "out": 10}}, 0.0, 0.0),
        ({"car": {"in": 10, "out": 10}}, {"car": {"in": 11, "out": 9}}, 0.0, 10.0),  # errors cancel in the total
        ({"car": {"in": 8, "out": 0}, "bus": {"in": 2, "out": 0}}, {"car": {"in": 9, "out": 0}}, 10.0, 30.0),
    ],
)
def test_compare_counts_table(truth, counted, total_pct, abs_pct) -> None:
    result = compare_counts(truth, counted, counted)
    assert result["total_error_pct"] == total_pct
    assert result["abs_error_pct"] == abs_pct
    assert result["mqtt_matches"] is True
    assert "total count error" in format_table(result)


def test_edge_demo_end_to_end(tmp_path: Path) -> None:
    _need("onnxruntime", "onnx", "amqtt", "paho.mqtt")
    out = tmp_path / "demo.json"
    work = tmp_path / "work"
    cmd = [
        sys.executable,
        "-m",
        "edgetally",
        "demo",
        "--seconds",
        "20",
        "--no-dashboard",
        "--work",
        str(work),
        "--json",
        str(out),
    ]
    # README command 1 installs no torch: the demo must not need it (an importable 'torch' that fails).
    blocker = tmp_path / "no-torch" / "torch"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('torch is blocked: README command 1 has none')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker.parent)}
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The README shows this run's table: it must be what the program prints (README_COMMAND + --work/--json,
    # which change where files go, not what is counted).
    assert set(shlex.split(README_COMMAND)[2:]) <= set(cmd[4:])
    assert readme_outputs.normalise(proc.stdout) == readme_outputs.documented(README.read_text())[README_COMMAND], (
        "README.md's demo table differs from the program's: python scripts/readme_outputs.py --write"
    )
    result = json.loads(out.read_text())
    truth = json.loads(next(work.glob("scene-s7-20s.truth.json")).read_text())
    assert result["truth_total"] == truth["total"]["in"] + truth["total"]["out"] >= 15
    assert result["total_error_pct"] <= 5.0, proc.stdout
    assert result["mqtt_matches"], "counts received over MQTT differ from the runner's"
    assert result["model"]["source"] == "onnx" and not result["model"]["cached"]
    artifact = Path(result["model"]["artifact"])
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["precision"] == "int8"

    # Second run: the artifact is reused (keyed by the model hash), the scene too.
    proc2 = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc2.returncode == 0, proc2.stderr[-3000:]
    again = json.loads(out.read_text())
    assert again["model"]["cached"] and again["model"]["artifact"] == str(artifact)
    assert again["counted_total"] == result["counted_total"]


def test_demo_video_needs_model(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    proc = subprocess.run(
        [sys.executable, "-m", "edgetally", "demo", "--video", str(video), "--work", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "--video needs --model" in proc.stderr


class _Demo:
    """`edge demo` as a real subprocess; its stderr collected line by line on a thread."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edgetally", "demo", *args],
            cwd=REPO,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.err: list[str] = []
        self._reader = threading.Thread(
            target=lambda: self.err.extend(iter(self.proc.stderr.readline, "")), daemon=True
        )
        self._reader.start()

    def wait_for(self, pattern: str, timeout: float = 120.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.err):
                if (m := re.search(pattern, line)) is not None:
                    return m
            assert self.proc.poll() is None, f"demo exited {self.proc.returncode}:\n{''.join(self.err)[-3000:]}"
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} within {timeout} s:\n{''.join(self.err)[-3000:]}")

    def stop(self, signum: int, timeout: float = 30.0) -> tuple[int, str, str]:
        self.proc.send_signal(signum)
        try:
            self.proc.wait(timeout)  # stdout is small (the table); stderr is the reader thread's alone
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"still running {timeout:g} s after {signal.Signals(signum).name}:\n" + "".join(self.err)[-3000:]
            ) from None
        self._reader.join(5)
        assert self.proc.stdout is not None
        return self.proc.returncode, self.proc.stdout.read(), "".join(self.err)


@pytest.mark.parametrize(
    "signum, host",
    [(signal.SIGINT, "127.0.0.1"), (signal.SIGTERM, "0.0.0.0")],
    ids=["ctrl-c", "sigterm-on-all-addresses"],
)
def test_keep_serving_serves_until_ctrl_c_or_sigterm(
    tmp_path: Path, demo_fp32_artifact: Path, demo_scene: Path, signum: int, host: str
) -> None:
    _need("amqtt", "paho.mqtt")
    from tests.service_helpers import http_get

    demo = _Demo(
        "--keep-serving",
        "--host",
        host,
        "--dashboard-port",
        "0",
        "--speed",
        "0",
        "--work",
        str(tmp_path),
        "--model",
        str(demo_fp32_artifact),
        "--video",
        str(demo_scene),
        "--truth",
        str(demo_scene.with_suffix(".truth.json")),
    )
    try:
        url = demo.wait_for(r"\[dashboard\] still serving (http://(\S+?):(\d+)/)")
        assert url[2] == (socket.gethostname() if host == "0.0.0.0" else "127.0.0.1")  # an address others can use
        code, body = http_get(f"http://127.0.0.1:{url[3]}/state.json")
        counters = json.loads(body)["devices"]["demo"]["counters"]["L"]
        assert code == 200 and sum(n for dirs in counters.values() for n in dirs.values()) > 0
        assert any(re.match(r"\[run\] frame \d+/\d+ .* counted L: in \d+ out \d+", line) for line in demo.err)
        rc, out, err = demo.stop(signum)
    finally:
        demo.proc.kill()
    assert rc == 0 and "[dashboard] stopped" in err, err[-2000:]
    assert "counted vs ground truth" in out


def test_sigterm_while_counting_stops_the_demo_cleanly(
    tmp_path: Path, demo_fp32_artifact: Path, demo_scene: Path
) -> None:
    _need("amqtt", "paho.mqtt")
    demo = _Demo(
        "--no-dashboard",
        "--speed",
        "0.5",
        "--work",
        str(tmp_path),
        "--model",
        str(demo_fp32_artifact),
        "--video",
        str(demo_scene),
        "--truth",
        str(demo_scene.with_suffix(".truth.json")),
    )
    try:
        demo.wait_for(r"ready: first frame processed")  # the runner's own Ctrl-C/SIGTERM handling is in place
        time.sleep(1.0)
        rc, out, err = demo.stop(signal.SIGTERM)
    finally:
        demo.proc.kill()
    assert rc == 0, err[-2000:]
    assert "received SIGTERM: stopping after this frame" in err
    frames = int(re.search(r"\[run\] (\d+) frames in", err)[1])
    assert 0 < frames < 8 * 15  # stopped part-way through the 8 s scene, with the partial counts reported


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("tty", [True, False], ids=["terminal", "log"])
def test_progress_line_shows_frames_and_running_counts(tty: bool) -> None:
    from edgetally.demo.progress import CountProgress
    from edgetally.structures import CountTotals

    stream = _Stream(tty)
    progress = CountProgress(3, stream, interval_s=0.0)
    totals = CountTotals({"L": {"car": {"in": 2, "out": 1}, "bus": {"in": 1}}})
    progress.open(SimpleNamespace(totals=totals))  # type: ignore[arg-type]
    for i in range(3):
        progress.frame(SimpleNamespace(frames=i + 1, frame=SimpleNamespace(timestamp=i / 15)))  # type: ignore[arg-type]
    progress.close()
    text = stream.getvalue()
    last = re.split(r"[\r\n]", text.rstrip("\n"))[-1].replace("\x1b[K", "")
    assert re.fullmatch(r"\[run\] frame 3/3 +video +0\.1 s +[\d.]+ fps +counted L: in 3 out 1", last), last
    # a terminal: one line rewritten in place (twice a second at most); a log: a line per update
    assert text.count("\n") == (1 if tty else 3) and ("\r" in text) == tty
