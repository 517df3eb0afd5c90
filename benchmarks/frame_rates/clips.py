"""The benchmark's material: real video, synthetic demo scenes and MOT17-derived trajectories.

A Clip is one sequence with its per-frame detections (cached), its counting lines and the true
number of crossings per line and direction. Video clips also name their file, so optical flow
can run on the real frames; MOT17 has no images (input-rate rows only).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.frame_rates.detections import cached_detections
from edgetally.structures import Detections
from edgetally.tracking import TrackerConfig

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
TRAFFIC_VIDEO = SHARED / "videos" / "traffic_road.mp4"
TRAFFIC_TRUTH = SHARED / "videos" / "traffic_road.counts.json"
YOLOX = SHARED / "models" / "yolox_nano.onnx"
TRAFFIC_CLASSES = ("car", "truck", "bus")
DEMO_MODEL = REPO / "models" / "demo"
DEMO_SECONDS = 30.0
# What `edge run` feeds its tracker by default: the boxes down to the tracker's low_score (its
# second look), not only those at the decoder's reported 0.25 (edgetally/build.py).
RUNNER_SCORE = TrackerConfig().low_score


@dataclass(frozen=True)
class CountLine:
    name: str
    p1: tuple[float, float]
    p2: tuple[float, float]


@dataclass(frozen=True)
class Clip:
    """One sequence. detections[i] is frame i (every class, scores >= RUNNER_SCORE, already
    restricted to the counted classes, as ``edge run --classes`` does before the tracker)."""

    name: str
    fps: float
    detections: list[Detections]
    labels: tuple[str, ...]
    lines: tuple[CountLine, ...]
    truth: dict[str, dict[str, int]]  # line -> direction -> true crossings
    video: Path | None = None
    infer_ms: float = 0.0  # detector time per frame on this machine (0: not measured)
    true_ids: list[np.ndarray] | None = None  # per frame, each detection's true identity (-1: false positive)

    @property
    def num_frames(self) -> int:
        return len(self.detections)


def _restrict(
    frames: list[Detections], labels: tuple[str, ...], classes: tuple[str, ...] | None, min_score: float
) -> list[Detections]:
    keep = np.array([classes is None or name in classes for name in labels])
    return [d.select(keep[d.class_ids] & (d.scores >= min_score)) for d in frames]


def traffic_clip(cache: Path, log: Callable[[str], None], artifact: Path | None = None) -> Clip:
    """traffic_road.mp4, YOLOX-nano FP32 (or ``artifact``: e.g. an INT8 one from ``edge
    convert``), cars/trucks/buses, the hand count on both of its lines (x=320, and x=280 where the
    same 26 vehicles were counted again): two lines, so no setting is tuned to where one line
    happens to sit."""
    from edgetally.converters.labels import load_labels

    artifact = artifact or traffic_artifact(cache)
    run = cached_detections(TRAFFIC_VIDEO, artifact, cache, log)
    labels = tuple(load_labels("coco80"))
    data = json.loads(TRAFFIC_TRUTH.read_text())
    lines, truth = [], {}
    for key, name in (("line", "L"), ("second_line", "L280")):
        spec = data[key]
        counts = data["counts"] if key == "line" else spec
        lines.append(CountLine(name, (float(spec["x1"]), float(spec["y1"])), (float(spec["x2"]), float(spec["y2"]))))
        truth[name] = {d: int(counts[d]["total"] if key == "line" else counts[d]) for d in ("in", "out")}
    frames = _restrict(run.detections, labels, TRAFFIC_CLASSES, RUNNER_SCORE)
    return Clip("traffic_road", 23.976, frames, labels, tuple(lines), truth, TRAFFIC_VIDEO, run.infer_ms)


def traffic_variants(cache: Path, log: Callable[[str], None], artifact: Path | None = None) -> list[Clip]:
    """traffic_road.mp4 reversed in time, mirrored left-right, and both: the same 26 vehicles
    driving the other way, entering from the other side, and both. A stack tuned to where this
    video's vehicles are born, or to which way they drive relative to its lines, scores
    differently on these. Reversal reuses the original detections (same frames); the mirrored
    video is detected again (the detector is not mirror-exact). Videos are written losslessly
    (FFV1) under ``cache`` once."""
    base = traffic_clip(cache, log, artifact)
    videos = {name: cache / f"traffic_road-{name}.mkv" for name in ("reversed", "mirrored", "mirrored-reversed")}
    if not all(path.is_file() for path in videos.values()):
        from benchmarks.frame_rates.detections import iter_frames

        frames = list(iter_frames(TRAFFIC_VIDEO))
        mirrored = [np.ascontiguousarray(f[:, ::-1]) for f in frames]
        for name, images in (("reversed", frames[::-1]), ("mirrored", mirrored), ("mirrored-reversed", mirrored[::-1])):
            _lossless(videos[name], images, base.fps, log)
    width = float(json.loads(TRAFFIC_TRUTH.read_text())["width"])
    run = cached_detections(videos["mirrored"], artifact or traffic_artifact(cache), cache, log)
    seen = _restrict(run.detections, base.labels, TRAFFIC_CLASSES, RUNNER_SCORE)
    return [
        transformed(base, "reversed", videos["reversed"], reverse=True),
        transformed(base, "mirrored", videos["mirrored"], mirror_width=width, detections=seen),
        transformed(
            base, "mirrored+reversed", videos["mirrored-reversed"], mirror_width=width, reverse=True, detections=seen
        ),
    ]


def transformed(
    clip: Clip,
    suffix: str,
    video: Path | None,
    *,
    mirror_width: float | None = None,
    reverse: bool = False,
    detections: list[Detections] | None = None,
) -> Clip:
    """``clip`` mirrored about x = width / 2 and/or played backwards. ``detections``: the mirrored
    video's own (default: the clip's boxes, mirrored); true identities come along only with the
    clip's own boxes. Either transform flips every crossing's direction: backwards, each object
    crosses from the other side; mirrored, the line's sides swap (the side test is a cross
    product, and a mirror flips its sign). Both together keep the directions."""
    frames, ids = (clip.detections, clip.true_ids) if detections is None else (detections, None)
    lines = clip.lines
    if mirror_width is not None:
        w = mirror_width
        lines = tuple(CountLine(ln.name, (w - ln.p1[0], ln.p1[1]), (w - ln.p2[0], ln.p2[1])) for ln in lines)
        if detections is None:
            frames = [_mirrored(d, w) for d in frames]
    if reverse:
        frames = frames[::-1]
        ids = ids[::-1] if ids is not None else None
    truth = clip.truth
    if reverse != (mirror_width is not None):
        truth = {name: {"in": t["out"], "out": t["in"]} for name, t in truth.items()}
    return dataclasses.replace(
        clip, name=f"{clip.name} {suffix}", detections=frames, lines=lines, truth=truth, video=video, true_ids=ids
    )


def regeometry(clip: Clip, scale: float = 1.0, transpose: bool = False) -> Clip:
    """``clip`` as if filmed at ``scale`` times its resolution and/or transposed (x <-> y: objects
    that crossed a vertical line now cross a horizontal one, moving up or down the image, with boxes
    taller than wide). Boxes and lines only: the video is dropped, so the clip has input-rate rows and
    no optical-flow rows. A transpose is a mirror about y = x: it flips every crossing's direction."""
    order = [1, 0, 3, 2] if transpose else [0, 1, 2, 3]
    frames = [Detections(d.xyxy[:, order] * scale, d.scores, d.class_ids) for d in clip.detections]

    def point(p: tuple[float, float]) -> tuple[float, float]:
        return (p[1] * scale, p[0] * scale) if transpose else (p[0] * scale, p[1] * scale)

    lines = tuple(CountLine(ln.name, point(ln.p1), point(ln.p2)) for ln in clip.lines)
    truth = {n: {"in": t["out"], "out": t["in"]} for n, t in clip.truth.items()} if transpose else clip.truth
    name = " ".join([clip.name, *geometry_words(scale, transpose)])
    return dataclasses.replace(clip, name=name, detections=frames, lines=lines, truth=truth, video=None)


def geometry_words(scale: float, transpose: bool) -> list[str]:
    """How ``regeometry`` names what it did: ["x3"], ["transposed"], both or none."""
    return ([f"x{scale:g}"] if scale != 1.0 else []) + (["transposed"] if transpose else [])


def with_misses(clip: Clip, share: float, seed: int = 0) -> Clip:
    """``clip`` with ``share`` of its detections dropped at random (each box independently, seeded):
    a detector with lower recall on the same footage. Video and true identities stay."""
    rng = np.random.default_rng(seed)
    frames, ids = [], []
    for i, d in enumerate(clip.detections):
        keep = rng.random(len(d.scores)) >= share
        frames.append(d.select(keep))
        if clip.true_ids is not None:
            ids.append(clip.true_ids[i][keep])
    name = f"{clip.name} {share:g} missed"
    return dataclasses.replace(clip, name=name, detections=frames, true_ids=ids if clip.true_ids is not None else None)


def _mirrored(d: Detections, width: float) -> Detections:
    return Detections(
        np.stack([width - d.xyxy[:, 2], d.xyxy[:, 1], width - d.xyxy[:, 0], d.xyxy[:, 3]], 1), d.scores, d.class_ids
    )


def _lossless(path: Path, frames: list[np.ndarray], fps: float, log: Callable[[str], None]) -> None:
    import cv2

    log(f"writing {path.name}")
    height, width = frames[0].shape[:2]
    tmp = path.with_name(f".{path.name}")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"FFV1"), fps, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    tmp.replace(path)


def traffic_artifact(cache: Path) -> Path:
    """The shared YOLOX-nano packaged as an FP32 artifact (made once, under ``cache``)."""
    return _packaged(cache / "yolox_nano_fp32", lambda out: _package(YOLOX, out, 416, "coco80", {}))


def demo_clip(seed: int, cache: Path, log: Callable[[str], None]) -> Clip:
    """A synthetic scene (edgetally.demo, exact truth) counted with the demo detector (FP32)."""
    from edgetally.demo.model_step import DECODER_OPTIONS, INPUT_HW
    from edgetally.demo.scene import DEFAULT_LINE, SceneConfig, render_scene

    video = cache / f"scene-s{seed}-{DEMO_SECONDS:g}s.mp4"
    truth_file = video.with_suffix(".truth.json")
    if not (video.is_file() and truth_file.is_file()):
        log(f"rendering demo scene seed {seed}")
        render_scene(SceneConfig(seconds=DEMO_SECONDS, seed=seed), video).write_truth_json(truth_file, DEFAULT_LINE)
    data = json.loads(truth_file.read_text())
    artifact = _packaged(
        cache / "demo_fp32",
        lambda out: _package(
            DEMO_MODEL / "detector.onnx", out, INPUT_HW, str(DEMO_MODEL / "labels.txt"), dict(DECODER_OPTIONS)
        ),
    )
    run = cached_detections(video, artifact, cache, log)
    labels = tuple(data["labels"])
    truth = {"L": {d: int(data["total"][d]) for d in ("in", "out")}}
    line = CountLine("L", tuple(data["line"]["p1"]), tuple(data["line"]["p2"]))
    frames = _restrict(run.detections, labels, None, RUNNER_SCORE)
    return Clip(f"demo seed {seed}", float(data["fps"]), frames, labels, (line,), truth, video, run.infer_ms)


MOT17_LINES = ("all", "h", "v")


def mot17_clips(noise: dict[str, Any] | None = None, line_set: str = "all") -> list[Clip]:
    """MOT17-02/04/09 ground truth with the tracking benchmark's derived detections (30 fps) and
    its four counting lines and true crossings per sequence. Every detection is kept, as in
    ``python -m benchmarks.tracking``, so the full-rate rows match that benchmark's. Each
    detection's true identity comes along (``true_ids``: the ``ideal`` stack counts with it).

    noise: NoiseSpec overrides (e.g. ``{"miss_rate": 0}``: what the detector's misses cost).
    line_set: "h" keeps the horizontal lines (h33, h67: people mostly walk along them, so box jitter
    decides many crossings), "v" the vertical ones (v33, v67: walked across), "all" both."""
    from benchmarks.tracking import counting
    from benchmarks.tracking.data import MOT_ROOT, load_mot17_noisy
    from benchmarks.tracking.noise import NoiseSpec, evaluated_gt, noisy_detections
    from edgetally.tracking.mot_io import FRAME, ID, detections_by_frame

    if line_set not in MOT17_LINES:
        raise ValueError(f"MOT17 lines: one of {MOT17_LINES}, got {line_set!r}")
    clips = []
    spec = NoiseSpec(**(noise or {}))
    for seq in load_mot17_noisy(MOT_ROOT, spec).sequences:
        gt = evaluated_gt(seq.gt, "MOT17")
        placed = [ln for ln in counting.place_lines(gt, seq.info) if line_set in ("all", ln.name[0])]
        lines = tuple(CountLine(ln.name, ln.p1, ln.p2) for ln in placed)
        truth = {ln.name: counting.true_crossings(gt, ln, seq.info.frame_rate) for ln in placed}
        n = seq.info.seq_length
        table = noisy_detections(gt, seq.info, spec, keep_ids=True)  # the same draws as seq.dets, ids kept
        frames = detections_by_frame(table, n)
        rows = table[(table[:, FRAME] >= 1) & (table[:, FRAME] <= n)]
        rows = rows[np.argsort(rows[:, FRAME], kind="stable")]  # detections_by_frame's order
        bounds = np.searchsorted(rows[:, FRAME], np.arange(1, n + 2))
        ids = [rows[bounds[i] : bounds[i + 1], ID].astype(np.int64) for i in range(n)]
        clips.append(Clip(seq.name, float(seq.info.frame_rate), frames, ("person",), lines, truth, true_ids=ids))
    return clips


def _packaged(out: Path, make: Callable[[Path], None]) -> Path:
    if not (out / "manifest.json").is_file():
        make(out)
    return out


def _package(model: Path, out: Path, size: int | tuple[int, int], labels: str, decoder_options: dict) -> None:
    from edgetally.converters.package import package_fp32

    package_fp32(model, out, "yolox", size, labels, decoder_options=decoder_options)
