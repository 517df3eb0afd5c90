"""Jetson / TensorRT: an explicitly quantised (QDQ) INT8 ONNX plus an FP16 ONNX, engines built on the board.

TensorRT engines are tied to the GPU and TensorRT version, so they are built ON the device: the
runner's ``tensorrt`` runtime (edgetally.runtimes.tensorrt) builds the engine from the manifest's
ONNX on first start and caches it by hash. The artifact also carries ``build_engine.sh`` with the
equivalent ``trtexec`` lines, for checking by hand. TensorRT's explicit quantisation wants symmetric
S8 activations (zero point 0), so the QDQ model differs from the U8/S8 onnxruntime one. The accuracy
gate runs that same QDQ model with onnxruntime on the converting machine (the registry's executor):
a proxy for the engine's accuracy, which TensorRT may still change by fusing layers -- re-check on
the board with ``edge verify``. The FP16 ONNX (float32 I/O) is judged the same way and its verdict
recorded; if it fails, the FP16 engine line builds from the FP32 reference ONNX instead.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from edgetally.artifact import Artifact
from edgetally.converters.accuracy.calibration import CalibrationSet
from edgetally.converters.accuracy.folds import Fold
from edgetally.converters.accuracy.gate import GateConfig
from edgetally.converters.derive import derive

TRTEXEC = "/usr/src/tensorrt/bin/trtexec"
INT8_MODEL = "model.int8.onnx"
FP16_MODEL = "model.fp16.onnx"
RUNTIME, FORMAT = "tensorrt", "onnx-tensorrt"


def trtexec_commands(int8_model: str = INT8_MODEL, fp16_model: str = FP16_MODEL) -> list[str]:
    """The engine builds to run on the Jetson by hand (explicit INT8 from QDQ; FP16 from the FP16 ONNX)."""
    return [
        f"{TRTEXEC} --onnx={int8_model} --int8 --fp16 --saveEngine=model.int8.engine",
        f"{TRTEXEC} --onnx={fp16_model} --fp16 --saveEngine=model.fp16.engine",
    ]


def write_build_script(directory: Path, commands: Sequence[str]) -> Path:
    script = directory / "build_engine.sh"
    body = "\n".join(
        [
            "#!/bin/sh",
            "# Optional: `edge run` builds and caches the engine itself on first start.",
            "# Run on the Jetson (JetPack 6): engines are specific to its GPU and TensorRT.",
            "set -e",
            'cd "$(dirname "$0")"',
            *commands,
            "",
        ]
    )
    script.write_text(body)
    script.chmod(0o755)
    return script


def int8_builder(reference: Artifact, calibration: CalibrationSet, work_dir: Path, io_dtype: str = "float32"):
    """S8 symmetric QDQ ONNX labelled for the tensorrt runtime (the gate runs it with onnxruntime).

    Full 8-bit weights everywhere: TensorRT's INT8 kernels accumulate in 32 bits, so the 7-bit stem
    weights the CPU target takes against 16-bit overflow would only cost precision here."""
    from edgetally.converters.targets.onnxruntime import int8_builder as ort_builder

    return ort_builder(
        reference,
        calibration,
        work_dir,
        io_dtype,
        symmetric_s8=True,
        runtime=RUNTIME,
        format=FORMAT,
        overflow_fix=False,
    )


def fp32_fallback(reference: Artifact, directory: Path) -> Artifact:
    from edgetally.converters.targets.onnxruntime import fp32_fallback as ort_fallback

    return ort_fallback(reference, directory, runtime=RUNTIME, format=FORMAT)


def finish(out: Path, report: dict, reference: Artifact, folds: Sequence[Fold], config: GateConfig) -> None:
    """Add the judged FP16 ONNX and build_engine.sh next to the accepted INT8 model; record them."""
    artifact = Artifact.load(out)
    fp16 = _fp16_onnx(reference, out, list(folds[0].images) or list(folds[0].holdout), config)
    commands = trtexec_commands(
        artifact.manifest.model_file, FP16_MODEL if fp16["passed"] else f"reference/{reference.manifest.model_file}"
    )
    write_build_script(out, commands)
    derive(
        artifact,
        out,
        artifact.manifest.model_file,
        format=FORMAT,
        runtime=RUNTIME,
        precision=artifact.manifest.precision,
        notes=[
            *artifact.manifest.notes,
            "engine is built on the device on first start (cached by hash); "
            "build_engine.sh has the equivalent trtexec lines",
            *commands,
            "accuracy gate ran this QDQ model with onnxruntime (CPU) as a proxy for TensorRT",
        ],
    )
    report["tensorrt"] = {"build_script": "build_engine.sh", "commands": commands, "fp16": fp16}


def _fp16_onnx(reference: Artifact, out: Path, images: list, config: GateConfig) -> dict:
    """Write ``out/model.fp16.onnx`` and judge it against FP32 (onnxruntime as the proxy executor)."""
    import shutil

    from edgetally.converters.accuracy.gate import evaluate_reference, judge
    from edgetally.converters.targets.fp16 import to_fp16_onnx

    info = to_fp16_onnx(reference.model_path, out / FP16_MODEL)
    with tempfile.TemporaryDirectory(prefix="edge-fp16-") as tmp:
        shutil.copy2(out / FP16_MODEL, Path(tmp) / FP16_MODEL)
        candidate = derive(reference, Path(tmp), FP16_MODEL, format="onnx", runtime="onnxruntime", precision="fp16")
        verdict = judge(evaluate_reference(reference, images, config), candidate, images, config)
    return {
        "model_file": FP16_MODEL,
        "passed": verdict.passed,
        "reason": verdict.reason,
        **info,
        "metrics": {k: v for k, v in verdict.metrics.items() if k != "per_class_drop_points"},
    }
