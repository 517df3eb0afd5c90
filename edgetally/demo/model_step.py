"""The demo's model step: the committed demo detector -> an INT8 artifact for this machine's profile,
through the converters' PyTorch input path (ONNX fallback), cached in the work dir by content hash.

Imports ``converters`` (and torch) lazily: ``edge demo`` is a workstation convenience; the runner
itself never imports them.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = REPO / "models" / "demo"
FACTORY = "training.demo_model:build_model"
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
    source: str  # "pytorch" | "onnx" | "given"
    cached: bool
    seconds: float
    note: str


def model_hash(profile: str) -> str:
    """Hash of the committed weights, labels and every conversion option: a changed model or option
    gives a new artifact directory, an unchanged one is reused."""
    h = hashlib.sha256()
    for name in ("detector.pt", "detector.onnx", "labels.txt"):
        path = MODEL_DIR / name
        h.update(path.read_bytes() if path.is_file() else b"-")
    h.update(repr((profile, INPUT_HW, sorted(DECODER_OPTIONS.items()), CALIB_SEED, CALIB_SECONDS, CALIB_COUNT)).encode())
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


def export_pytorch(tmp: Path, log: Callable[[str], None]):  # -> TorchExport | None
    """The PyTorch input path (module:factory + state_dict); None when torch or the checkout's
    training/ package is not available."""
    try:
        from edgetally.converters.torch_export import export_to_onnx
    except ImportError as exc:
        log(f"model: PyTorch input path unavailable ({exc}); using the committed ONNX")
        return None
    if str(REPO) not in sys.path and (REPO / "training" / "demo_model.py").is_file():
        sys.path.insert(0, str(REPO))  # training/ is part of the checkout, not of the installed package
    try:
        return export_to_onnx(FACTORY, tmp / "detector.onnx", INPUT_HW, MODEL_DIR / "detector.pt")
    except Exception as exc:  # no torch on this box, or an export failure: the ONNX is the same model
        log(f"model: PyTorch export failed ({type(exc).__name__}: {exc}); using the committed ONNX")
        return None


def convert_demo_model(work: Path, profile: str, log: Callable[[str], None], threads: int = 2) -> DemoModel:
    """INT8 artifact for ``profile`` in ``work/artifacts/<hash>``; reused when already there."""
    out = work / "artifacts" / f"{profile}-{model_hash(profile)}"
    if (out / "manifest.json").is_file():
        return DemoModel(out, _source_of(out), True, 0.0, f"cached artifact {out}")
    from edgetally.converters.convert import Int8Request, convert_int8
    from edgetally.converters.package import DECODER_KEYS, PREPROCESS_KEYS

    t0 = time.monotonic()
    calib = calibration_frames(work)
    options = {"preprocess": {k: None for k in PREPROCESS_KEYS},
               "decoder_options": {k: DECODER_OPTIONS.get(k) for k in DECODER_KEYS}, "output_roles": {}}
    with tempfile.TemporaryDirectory(prefix="edge-demo-") as tmp:
        exported = export_pytorch(Path(tmp), log)
        onnx = exported.onnx_path if exported is not None else MODEL_DIR / "detector.onnx"
        if exported is not None:
            log(f"model: {exported.note()}")
        staging = out.with_name(out.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        request = Int8Request(onnx, staging, "yolox", INPUT_HW, MODEL_DIR / "labels.txt", calib,
                              profile=profile, calib_count=CALIB_COUNT, threads=threads,
                              latency_runs=DEMO_LATENCY_RUNS)
        artifact, _report = convert_int8(request, options, log=lambda m: log(f"convert: {m}"))
        if exported is not None:
            from edgetally.converters.torch_export import record_export

            record_export(artifact, exported)
    staging.rename(out)  # only a complete artifact ever sits at the cached path
    source = "pytorch" if exported is not None else "onnx"
    return DemoModel(out, source, False, time.monotonic() - t0, f"converted ({source} input) to {out}")


def _source_of(artifact: Path) -> str:
    text = (artifact / "manifest.json").read_text()
    return "pytorch" if "exported from PyTorch" in text else "onnx"
