"""The demo's model step: the committed demo detector's ONNX (``models/demo/detector.onnx``) -> an
INT8 artifact for this machine's profile, cached in the work dir by content hash.

ONNX in, so the demo needs no PyTorch (README command 1 installs no torch); the converters' PyTorch
input path is covered by tests/test_torch_input.py on the same model's checkpoint. Imports
``converters`` lazily: ``edge demo`` is a workstation convenience; the runner never imports them.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgetally.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = REPO / "models" / "demo"
INPUT_HW = (192, 320)
DECODER_OPTIONS = {"strides": (8, 16, 32), "nms_iou": 0.3}
CALIB_SEED = 50  # neither the demo's scene (7), training (>= 100) nor evaluation (9000+)
CALIB_SECONDS = 8.0
# 120 frames: 64 calibrate, the other 56 feed the label-free accuracy gate (it needs >= 16). The
# whole conversion takes ~15 s on 2 cores, so the demo uses the converter's default count.
CALIB_COUNT = 64
# The demo shows the report's latency table but is not a benchmark: 20 interleaved runs keep it quick.
DEMO_LATENCY_RUNS = 20


@dataclass(frozen=True)
class DemoModel:
    artifact: Path
    source: str  # "onnx" | "given"
    cached: bool
    seconds: float
    note: str


def model_files() -> tuple[Path, Path]:
    """(ONNX, labels) of the committed demo detector; a clear error when the checkout lacks them
    (``edge demo`` runs from a clone: ``pip install -e .``)."""
    onnx, labels = MODEL_DIR / "detector.onnx", MODEL_DIR / "labels.txt"
    missing = [str(p) for p in (onnx, labels) if not p.is_file()]
    if missing:
        raise ConfigError(
            f"the demo detector is not here ({', '.join(missing)} missing): run `edge demo` from a "
            "clone of the repository installed with `pip install -e .`, or pass --model ARTIFACT"
        )
    return onnx, labels


def model_hash(profile: str) -> str:
    """Hash of the committed ONNX, labels and every conversion option: a changed model or option
    gives a new artifact directory, an unchanged one is reused."""
    h = hashlib.sha256()
    for path in model_files():
        h.update(path.read_bytes())
    h.update(
        repr((profile, INPUT_HW, sorted(DECODER_OPTIONS.items()), CALIB_SEED, CALIB_SECONDS, CALIB_COUNT)).encode()
    )
    return h.hexdigest()[:16]


def calibration_frames(work: Path) -> Path:
    """Frames of a separate synthetic scene (not the one counted) as JPEG files."""
    import cv2

    from edgetally.demo.scene import SceneConfig, iter_scene

    folder = work / f"calib-s{CALIB_SEED}"
    if folder.is_dir() and len(list(folder.glob("*.jpg"))) >= 100:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for image, _boxes, _classes in iter_scene(SceneConfig(seconds=CALIB_SECONDS, seed=CALIB_SEED)):
        cv2.imwrite(str(folder / f"{_boxes.index:05d}.jpg"), image)
    return folder


def convert_demo_model(work: Path, profile: str, log: Callable[[str], None], threads: int = 2) -> DemoModel:
    """INT8 artifact for ``profile`` in ``work/artifacts/<hash>``; reused when already there."""
    out = work / "artifacts" / f"{profile}-{model_hash(profile)}"
    if (out / "manifest.json").is_file():
        return DemoModel(out, "onnx", True, 0.0, f"cached artifact {out}")
    from edgetally.converters.convert import Int8Request, convert_int8
    from edgetally.converters.package import DECODER_KEYS, PREPROCESS_KEYS

    t0 = time.monotonic()
    onnx, labels = model_files()
    calib = calibration_frames(work)
    options = {
        "preprocess": {k: None for k in PREPROCESS_KEYS},
        "decoder_options": {k: DECODER_OPTIONS.get(k) for k in DECODER_KEYS},
        "output_roles": {},
    }
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    request = Int8Request(
        onnx,
        staging,
        "yolox",
        INPUT_HW,
        labels,
        calib,
        profile=profile,
        calib_count=CALIB_COUNT,
        threads=threads,
        latency_runs=DEMO_LATENCY_RUNS,
    )
    convert_int8(request, options, log=lambda m: log(f"convert: {m}"))
    staging.rename(out)  # only a complete artifact ever sits at the cached path
    return DemoModel(out, "onnx", False, time.monotonic() - t0, f"converted {onnx.name} to INT8 in {out}")
