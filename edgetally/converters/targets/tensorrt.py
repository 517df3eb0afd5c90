"""Jetson / TensorRT: an explicitly quantised (QDQ) INT8 ONNX plus an FP16 ONNX for an FP16 engine.

TensorRT engines are tied to the GPU and TensorRT version, so they are built ON the device; the
artifact carries the ONNX files and the exact ``trtexec`` command lines (manifest notes and
``build_engine.sh``). TensorRT's explicit quantisation wants symmetric S8 activations (zero point
0), so the QDQ model differs from the U8/S8 onnxruntime one. The accuracy gate runs that same
QDQ model with onnxruntime on the converting machine: a proxy for the engine's accuracy, which
TensorRT may still change by fusing layers -- re-check on the board. The FP16 ONNX (float32 I/O)
is judged the same way and its verdict recorded; if it fails, the FP16 engine line builds from
the FP32 reference ONNX instead (TensorRT then picks FP16 kernels itself).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from edgetally.converters.accuracy.calibration import CalibrationSet
from edgetally.converters.derive import derive, tool_versions
from edgetally.converters.accuracy.evaluate import EvalImage
from edgetally.converters.accuracy.gate import GateConfig
from edgetally.converters.report import write_report
from edgetally.artifact import Artifact

TRTEXEC = "/usr/src/tensorrt/bin/trtexec"
INT8_MODEL = "model.int8.onnx"
FP16_MODEL = "model.fp16.onnx"


def trtexec_commands(int8_model: str = INT8_MODEL, fp16_model: str = FP16_MODEL) -> list[str]:
    """The engine builds to run on the Jetson (explicit INT8 from QDQ; FP16 from the FP16 ONNX)."""
    return [
        f"{TRTEXEC} --onnx={int8_model} --int8 --fp16 --saveEngine=model.int8.engine",
        f"{TRTEXEC} --onnx={fp16_model} --fp16 --saveEngine=model.fp16.engine",
    ]


def write_build_script(directory: Path, commands: Sequence[str]) -> Path:
    script = directory / "build_engine.sh"
    body = "\n".join(["#!/bin/sh", "# Run on the Jetson (JetPack 6): engines are specific to its GPU and TensorRT.",
                      "set -e", 'cd "$(dirname "$0")"', *commands, ""])
    script.write_text(body)
    script.chmod(0o755)
    return script


def build_tensorrt(reference: Artifact, out: Path, calibration: CalibrationSet, images: Sequence[EvalImage],
                   config: GateConfig, profile, eval_info: dict | None,
                   log: Callable[[str], None] = print, strategies: Sequence | None = None) -> tuple[Artifact, dict]:
    """Gate a symmetric S8 QDQ ONNX, then re-label it as a TensorRT artifact with the build steps."""
    from edgetally.converters.build import build_int8
    from edgetally.converters.accuracy.strategy import DEFAULT_REPAIRS

    artifact, report = build_int8(reference, out, "tensorrt-qdq", calibration, images, config,
                                  strategies=strategies or DEFAULT_REPAIRS, profile=profile.name if profile else None,
                                  eval_info=eval_info, log=log)
    out = Path(out)
    if artifact.manifest.model_file != INT8_MODEL:
        (out / artifact.manifest.model_file).rename(out / INT8_MODEL)
    fp16 = _fp16_onnx(Artifact.load(out / "reference"), out, images, config)
    commands = trtexec_commands(fp16_model=FP16_MODEL if fp16["passed"] else f"reference/{reference.manifest.model_file}")
    write_build_script(out, commands)
    final = derive(reference, out, INT8_MODEL, format="onnx-tensorrt", runtime="tensorrt", precision="int8",
                   profile=profile.name if profile else None, tools=tool_versions("onnx", "onnxruntime"),
                   notes=["engine is built on the device: run build_engine.sh", *commands,
                          "accuracy gate ran this QDQ model with onnxruntime (CPU) as a proxy for TensorRT"])
    report["tensorrt"] = {"build_script": "build_engine.sh", "commands": commands, "fp16": fp16}
    write_report(out, report)
    return final, report


def _fp16_onnx(reference: Artifact, out: Path, images: Sequence[EvalImage], config: GateConfig) -> dict:
    """Write ``out/model.fp16.onnx`` and judge it against FP32 (onnxruntime as the proxy executor)."""
    import tempfile

    from edgetally.converters.targets.fp16 import to_fp16_onnx
    from edgetally.converters.accuracy.gate import evaluate_reference, judge

    info = to_fp16_onnx(reference.model_path, out / FP16_MODEL)
    with tempfile.TemporaryDirectory(prefix="edge-fp16-") as tmp:
        shutil.copy2(out / FP16_MODEL, Path(tmp) / FP16_MODEL)
        candidate = derive(reference, Path(tmp), FP16_MODEL, format="onnx", runtime="onnxruntime", precision="fp16")
        verdict = judge(evaluate_reference(reference, images, config), candidate, images, config)
    return {"model_file": FP16_MODEL, "passed": verdict.passed, "reason": verdict.reason, **info,
            "metrics": {k: v for k, v in verdict.metrics.items() if k != "per_class_drop_points"}}
