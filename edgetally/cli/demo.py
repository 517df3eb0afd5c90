"""`edge demo`: the whole chain on one machine, with numbers to check.

embedded MQTT broker + dashboard (up first, for the whole run) -> scene (exact truth) -> INT8
artifact (converters, from the committed ONNX, cached) -> runner publishing over MQTT (+ annotated
snapshots) -> counts next to ground truth. Ctrl-C or SIGTERM ends it at any step.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from edgetally.cli.serving import sigterm_as_interrupt, wait_until_interrupted
from edgetally.errors import ConfigError, UsageError
from edgetally.hooks import Hook
from edgetally.structures import FrameResult

DEVICE_ID = "demo"
LINE_NAME = "L"


def _say(msg: str) -> None:
    click.echo(msg, err=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Pacer(Hook):
    """Hook that holds the frame loop to the source's timeline x ``speed`` (a file otherwise
    runs as fast as the CPU allows, too fast to watch on the dashboard)."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._t0: float | None = None

    def frame(self, result: FrameResult) -> None:
        frame = result.frame
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now - frame.timestamp / self.speed
        delay = self._t0 + frame.timestamp / self.speed - now
        if delay > 0:
            time.sleep(min(delay, 1.0))


def render(video: Path, truth: Path, seed: int, seconds: float) -> int:
    """Render a synthetic scene to ``video`` and its exact truth to ``truth``; return its frame count."""
    from edgetally.demo.scene import DEFAULT_LINE, SceneConfig, render_scene

    scene = render_scene(SceneConfig(seconds=seconds, seed=seed), video)
    scene.write_truth_json(truth, DEFAULT_LINE, LINE_NAME)
    return scene.num_frames


def make_scene(work: Path, seed: int, seconds: float) -> tuple[Path, Path]:
    """Render the scene video and its truth JSON (reused when both exist: rendering is deterministic)."""
    stem = f"scene-s{seed}-{seconds:g}s"
    video, truth = work / f"{stem}.mp4", work / f"{stem}.truth.json"
    if video.is_file() and truth.is_file():
        _say(f"[scene] reusing {video}")
        return video, truth
    t0 = time.monotonic()
    frames = render(video, truth, seed, seconds)
    _say(
        f"[scene] rendered {frames} frames (seed {seed}) to {video} in {time.monotonic() - t0:.1f} s; truth in {truth}"
    )
    return video, truth


def _render_only(out: Path, seed: int, seconds: float) -> None:
    truth_path = out.with_suffix(".truth.json")
    frames = render(out, truth_path, seed, seconds)
    truth = json.loads(truth_path.read_text())
    line = truth["line"]
    coords = ",".join(f"{v:g}" for v in (*line["p1"], *line["p2"]))
    click.echo(
        f"wrote {out} ({frames} frames, {seconds:g} s, seed {seed}) and {truth_path}: "
        f"{truth['total']['in']} in, {truth['total']['out']} out across {line['name']}={coords}"
    )


def _truth_counts(truth: Path | None) -> tuple[str, dict[str, Any] | None, list[str]]:
    """(counter name, class -> dir -> n, line as 'x1,y1,x2,y2') from a truth JSON (edgetally.demo format)."""
    if truth is None:
        return LINE_NAME, None, []
    data = json.loads(truth.read_text())
    line = data.get("line", {})
    points = [*line.get("p1", []), *line.get("p2", [])]
    return str(line.get("name", LINE_NAME)), data["counts"], [",".join(f"{v:g}" for v in points)] if points else []


def _frame_count(video: Path) -> int | None:
    import cv2

    cap = cv2.VideoCapture(str(video))
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    finally:
        cap.release()


def _mqtt_block(url: str, work: Path) -> dict[str, Any]:
    """A fresh outbox per demo run: the outbox restores totals on start, which would add the last
    run's counts to this one's."""
    outbox = work / "outbox-demo.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{outbox}{suffix}").unlink(missing_ok=True)
    return {"url": url, "outbox": str(outbox), "device_id": DEVICE_ID, "snapshot_interval_s": 1.0}


def _run(
    artifact: Path, video: Path, lines: dict[str, str], mqtt: dict[str, Any], speed: float, threads: int
) -> dict[str, Any]:
    from edgetally.config.models import RunSettings
    from edgetally.demo.progress import CountProgress
    from edgetally.runner import run_counting

    settings = RunSettings.model_validate(
        {
            "model": artifact,
            "source": str(video),
            "device_id": DEVICE_ID,
            "threads": threads,
            "mqtt": mqtt,
            "lines": [{"name": n, "points": p} for n, p in lines.items()],
        }
    )
    hooks: list[Hook] = [CountProgress(_frame_count(video))]
    if speed > 0:
        hooks.append(Pacer(speed))
    return run_counting(settings, hooks=hooks, show_progress=False)


def _mqtt_counts(bridge_state: Any, counter: str, expected: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """The counter as the dashboard bridge received it (waits briefly for the last publishes)."""
    end = time.monotonic() + timeout
    got: dict[str, Any] = {}
    while time.monotonic() < end:
        got = bridge_state.to_json()["devices"].get(DEVICE_ID, {}).get("counters", {}).get(counter, {})
        if all(got.get(c, {}).get(d, 0) == n for c, dirs in expected.items() for d, n in dirs.items()):
            break
        time.sleep(0.1)
    return got


def _model(model: Path | None, work: Path, profile: str, threads: int):  # -> DemoModel
    from edgetally.demo.model_step import DemoModel, convert_demo_model

    if model is not None:
        return DemoModel(model, "given", True, 0.0, f"using the given artifact {model}")
    try:
        return convert_demo_model(work, profile, _say, threads)
    except ImportError as exc:
        raise ConfigError(
            f"converting the demo detector needs the 'convert' extra ({exc}); or pass --model ARTIFACT"
        ) from exc


class Services:
    """Embedded broker on a free port + the dashboard (or only its MQTT bridge with --no-dashboard)."""

    def __init__(self, no_dashboard: bool, host: str, port: int) -> None:
        from edgetally.dashboard.server import MqttBridge
        from edgetally.dashboard.state import DashboardState
        from edgetally.sinks.broker import run_embedded_broker

        self.broker = run_embedded_broker("127.0.0.1", _free_port())
        _say(f"[mqtt] embedded broker at {self.broker.url}")
        self.dashboard: Any = None
        try:
            if no_dashboard:
                self.bridge: Any = MqttBridge(self.broker.url, DashboardState()).start()
            else:
                self.dashboard = self.bridge = _start_dashboard(self.broker.url, host, port)
                _say(f"[dashboard] open {self.dashboard.url} in a browser (it is up until the demo ends)")
            self.bridge.wait_connected()
        except BaseException:
            self.broker.stop()
            raise

    def stop(self) -> None:
        self.bridge.stop()
        self.broker.stop()


def _start_dashboard(broker_url: str, host: str, port: int) -> Any:
    from edgetally.dashboard.server import Dashboard

    try:
        return Dashboard(broker_url, port, host).start()
    except OSError as exc:  # port taken: any free one rather than failing the demo
        _say(f"[dashboard] port {port}: {exc.strerror}; taking a free port")
        return Dashboard(broker_url, 0, host).start()


@dataclass(frozen=True)
class DemoOptions:
    """`edge demo`'s options, as click parses them."""

    seconds: float
    seed: int
    work: Path
    no_dashboard: bool
    host: str
    dashboard_port: int
    keep_serving: bool
    speed: float | None
    profile: str
    threads: int
    video: Path | None
    model: Path | None
    lines: tuple[str, ...]
    truth: Path | None
    json_out: Path | None
    render_only: bool
    out: Path | None


@click.command("demo")
@click.option("--seconds", type=click.FloatRange(2, 3600), default=40.0, show_default=True, help="Scene length.")
@click.option("--seed", type=int, default=7, show_default=True, help="Scene seed (held out: training used >= 100).")
@click.option(
    "--work",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("edge-demo"),
    show_default=True,
    help="Work directory: scene, calibration frames, cached artifacts, outbox.",
)
@click.option("--no-dashboard", is_flag=True, help="Do not serve the dashboard.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Dashboard address (0.0.0.0: reachable from other machines, e.g. a Pi over SSH).",
)
@click.option("--dashboard-port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option(
    "--keep-serving",
    is_flag=True,
    help="Keep the broker and dashboard up after the counts are printed, until Ctrl-C or SIGTERM.",
)
@click.option(
    "--speed",
    type=click.FloatRange(0),
    default=None,
    help="Play the video at N x real time (0 = as fast as possible). Default: 1 with the dashboard, else 0.",
)
@click.option("--profile", default="generic-onnxruntime", show_default=True, help="Device profile to convert for.")
@click.option("--threads", type=click.IntRange(1), default=2, show_default=True)
@click.option(
    "--video",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Use this video instead of a synthetic scene (needs --model and --line or --truth).",
)
@click.option(
    "--model",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=None,
    help="Use this artifact instead of converting the demo detector.",
)
@click.option("--line", "lines", multiple=True, metavar="NAME=x1,y1,x2,y2", help="Counting line(s) for --video.")
@click.option(
    "--truth",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Ground truth JSON for --video (edgetally.demo format: line + counts).",
)
@click.option(
    "--json",
    "json_out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the comparison (and timings) as JSON.",
)
@click.option(
    "--render-only",
    is_flag=True,
    help="Only render the synthetic scene to --out (and its truth to OUT.truth.json), then exit.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="With --render-only: the video to write (default scene.mp4).",
)
def demo_command(**options: Any) -> None:
    """Generate a traffic scene, convert the demo detector to INT8, count over MQTT with a live
    dashboard, and print the counts next to the exact ground truth.

    \b
    Ctrl-C or SIGTERM stops it at any step. Examples:
      edge demo                                 # dashboard at http://127.0.0.1:8080 while it runs
      edge demo --keep-serving --host 0.0.0.0   # on a Pi over SSH: open http://<pi>:8080 until Ctrl-C
      edge demo --render-only --out scene.mp4   # only the video (+ scene.truth.json), for `edge run`
    """
    o = DemoOptions(**options)
    if o.render_only:
        _render_only(o.out or Path("scene.mp4"), o.seed, o.seconds)
        return
    if o.out is not None:
        raise UsageError("--out applies only to --render-only")
    if o.keep_serving and o.no_dashboard:
        raise UsageError("--keep-serving keeps the dashboard up: drop --no-dashboard")
    if o.video is not None and o.model is None:
        raise ConfigError("--video needs --model ARTIFACT (the demo detector only knows synthetic scenes)")
    if o.video is not None:
        _counting_lines(o.lines, o.truth)  # a usage error now, before anything starts
    with sigterm_as_interrupt():
        _demo(o)


def _counting_lines(lines: tuple[str, ...], truth: Path | None) -> tuple[str, dict[str, Any] | None, dict[str, str]]:
    """(counter compared with the truth, its truth counts or None, lines to count: name -> 'x1,y1,x2,y2')."""
    counter, truth_counts, truth_line = _truth_counts(truth)
    named = dict(v.split("=", 1) for v in lines if "=" in v) or ({counter: truth_line[0]} if truth_line else {})
    if not named:
        raise ConfigError("--video needs --line NAME=x1,y1,x2,y2 (or a --truth file that names its line)")
    return counter, truth_counts, named


def _demo(o: DemoOptions) -> None:
    t_start = time.monotonic()
    o.work.mkdir(parents=True, exist_ok=True)
    services = Services(o.no_dashboard, o.host, o.dashboard_port)
    try:
        video, truth = (o.video, o.truth) if o.video is not None else make_scene(o.work, o.seed, o.seconds)
        counter, truth_counts, named = _counting_lines(o.lines if o.video is not None else (), truth)
        demo_model = _model(o.model, o.work, o.profile, o.threads)
        _say(f"[model] {demo_model.note}" + (f" in {demo_model.seconds:.1f} s" if demo_model.seconds else ""))
        speed = (0.0 if o.no_dashboard else 1.0) if o.speed is None else o.speed
        _say(
            f"[run] counting {video} on line(s) {named} as device '{DEVICE_ID}'"
            + (f" at {speed:g}x real time" if speed else "")
        )
        t_run = time.monotonic()
        summary = _run(demo_model.artifact, video, named, _mqtt_block(services.broker.url, o.work), speed, o.threads)
        run_s = time.monotonic() - t_run
        result = _report(
            summary, counter, truth_counts, services.bridge.state, demo_model, run_s, time.monotonic() - t_start
        )
        if o.json_out is not None:
            o.json_out.parent.mkdir(parents=True, exist_ok=True)
            o.json_out.write_text(json.dumps(result, indent=1) + "\n")
        _linger(services.dashboard, o.keep_serving)
    finally:
        services.stop()


def _linger(dashboard: Any, keep_serving: bool) -> None:
    if dashboard is None:
        return
    if not keep_serving:
        _say(f"[dashboard] {dashboard.url} stops now; `edge demo --keep-serving` keeps it up after the counts")
        return
    wait_until_interrupted(f"[dashboard] still serving {dashboard.url}; Ctrl-C (or SIGTERM) to stop")
    _say("[dashboard] stopped")


def _report(
    summary: dict[str, Any],
    counter: str,
    truth_counts: dict[str, Any] | None,
    state: Any,
    demo_model: Any,
    run_s: float,
    total_s: float,
) -> dict[str, Any]:
    from edgetally.demo.compare import compare_counts, format_table

    counted = summary.get("counts", {}).get(counter, {})
    result: dict[str, Any] = {
        "counter": counter,
        "summary": summary,
        "run_seconds": round(run_s, 2),
        "wall_seconds": round(total_s, 2),
        "model": {
            "artifact": str(demo_model.artifact),
            "source": demo_model.source,
            "cached": demo_model.cached,
            "convert_seconds": round(demo_model.seconds, 2),
        },
    }
    mqtt = _mqtt_counts(state, counter, counted)
    _say(f"[run] {summary['frames']} frames in {summary['seconds']:.1f} s ({summary['fps']:.1f} fps)")
    if truth_counts is None:
        result["counted"], result["mqtt"] = counted, mqtt
        click.echo(json.dumps({"counted": counted}, indent=1))
        return result
    comparison = compare_counts(truth_counts, counted, mqtt)
    result.update(comparison)
    click.echo(f"\nline '{counter}': counted vs ground truth\n" + format_table(comparison))
    click.echo(f"demo finished in {total_s:.1f} s (counting {run_s:.1f} s)")
    return result


__all__ = ["Pacer", "demo_command", "make_scene", "render"]
