"""FP32 artifact -> accuracy-gated INT8 (or FP16) artifact for one runtime, with report.json.

Layout of the output directory::

    out/model.int8.onnx | model.int8.xml+.bin   the accepted model (model.fp16.* for FP16,
                                                model.fp32.* for an FP32 --fallback)
    out/manifest.json                           the runner's contract
    out/report.json                             sizes, accuracy, latency, provenance, every attempt
    out/reference/                              the FP32 artifact the gate compared against
                                                (so `edge verify out` can re-check it later)
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from edgetally.converters.accuracy.calibration import CalibrationSet
from edgetally.converters.derive import copy_reference, derive, tool_versions
from edgetally.converters.accuracy.evaluate import EvalImage
from edgetally.converters.accuracy.gate import GateConfig, GateResult, evaluate_reference, run_gate
from edgetally.converters.report import latency_table, model_bytes, write_report
from edgetally.converters.accuracy.strategy import DEFAULT_REPAIRS, Strategy
from edgetally.artifact import Artifact
from edgetally.errors import ConversionError

REFERENCE_DIR = "reference"
# "tensorrt-qdq": S8 symmetric QDQ ONNX for TensorRT, gated here with onnxruntime as the executor.
# "litert": INT8 TFLite via ai-edge-quantizer: int8 input and float output (edgetally.converters.targets.tflite), or
# with io_dtype int8/uint8 full-integer input and outputs, the packed output split (edgetally.converters.targets.tflite_full_int).
TARGETS = ("onnxruntime", "openvino", "tensorrt-qdq", "litert")
FALLBACK_NOTE = "no reduced-precision model passed the accuracy gate: FP32 fallback (--fallback)"


def _onnx_builder(reference: Artifact, calibration: CalibrationSet, symmetric_s8: bool = False):
    from edgetally.converters.targets.onnxruntime import quantize_onnx

    def build(strategy: Strategy, directory: Path) -> tuple[Artifact, dict]:
        directory.mkdir(parents=True, exist_ok=True)
        info = quantize_onnx(reference.model_path, directory / "model.int8.onnx", calibration, strategy,
                             reference.manifest.input.name, symmetric_s8=symmetric_s8)
        notes = [f"INT8 QDQ (onnxruntime quantize_static), strategy {strategy.name}"]
        artifact = derive(reference, directory, "model.int8.onnx", format="onnx", runtime="onnxruntime",
                          precision="int8", notes=notes, tools=tool_versions("onnx", "onnxruntime"))
        return artifact, info

    return build


def _openvino_builder(reference: Artifact, calibration: CalibrationSet):
    from edgetally.converters.targets.openvino import quantize_openvino

    def build(strategy: Strategy, directory: Path) -> tuple[Artifact, dict]:
        directory.mkdir(parents=True, exist_ok=True)
        info = quantize_openvino(reference.model_path, directory / "model.int8.xml", calibration, strategy)
        notes = [f"OpenVINO IR INT8 (NNCF, preset MIXED), strategy {strategy.name}"]
        artifact = derive(reference, directory, "model.int8.xml", format="openvino", runtime="openvino",
                          precision="int8", notes=notes, tools=tool_versions("openvino", "nncf"))
        return artifact, info

    return build


def _fallback(reference: Artifact, target: str, directory: Path) -> Artifact:
    """The FP32 model for ``target`` (used only when the user asked for --fallback)."""
    directory.mkdir(parents=True, exist_ok=True)
    if target == "openvino":
        from edgetally.converters.targets.openvino import convert_fp32

        convert_fp32(reference.model_path, directory / "model.fp32.xml")
        return derive(reference, directory, "model.fp32.xml", format="openvino", runtime="openvino", precision="fp32",
                      notes=[FALLBACK_NOTE])
    shutil.copy2(reference.model_path, directory / "model.fp32.onnx")
    return derive(reference, directory, "model.fp32.onnx", format="onnx", runtime="onnxruntime", precision="fp32",
                  notes=[FALLBACK_NOTE])


def _install(source: Path, out: Path) -> Artifact:
    """Move the accepted attempt's files into ``out`` (next to reference/ and report.json)."""
    for item in source.iterdir():
        target = out / item.name
        if target.exists():
            target.unlink()
        shutil.move(str(item), str(target))
    return Artifact.load(out)


def build_int8(reference: Artifact, out: Path, target: str, calibration: CalibrationSet | None, images: Sequence[EvalImage],
               config: GateConfig = GateConfig(), strategies: Sequence[Strategy] = DEFAULT_REPAIRS,
               fallback: bool = False, profile: str | None = None, eval_info: dict | None = None,
               latency_runs: int = 100, log: Callable[[str], None] = print,
               precision: str = "int8", io_dtype: str = "float32") -> tuple[Artifact, dict]:
    """Quantise ``reference`` (an FP32 ONNX artifact) for ``target``; raise ConversionError if the gate fails.

    ``precision="fp16"``: build the target's FP16 model instead (one attempt, same gate, same report).
    ``io_dtype`` (litert only): "int8"/"uint8" builds a full-integer TFLite (integer input and outputs)."""
    if precision == "fp16":
        from edgetally.converters.targets.fp16 import FP16, fp16_builder

        fp16_builder(reference, target)  # refuses unsupported targets before any work
        strategies = (FP16,)
    elif target not in TARGETS:
        raise ConversionError(f"INT8 for runtime '{target}' is not supported here; supported: {', '.join(TARGETS)}")
    elif calibration is None:
        raise ConversionError("INT8 needs a calibration set")
    if reference.manifest.format != "onnx":
        raise ConversionError(f"{reference.directory}: {precision.upper()} conversion starts from an FP32 ONNX artifact")
    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ref = copy_reference(reference, out / REFERENCE_DIR)
    ref_eval = evaluate_reference(ref, images, config)
    if precision == "fp16":
        builder = fp16_builder(ref, target)
    elif target == "openvino":
        builder = _openvino_builder(ref, calibration)
    elif target == "litert" and io_dtype != "float32":
        from edgetally.converters.targets.tflite_full_int import FULL_INTEGER_REPAIRS, full_integer_builder

        builder = full_integer_builder(ref, calibration, out / ".attempts", io_dtype)
        strategies = FULL_INTEGER_REPAIRS if strategies is DEFAULT_REPAIRS else strategies
    elif target == "litert":
        from edgetally.converters.targets.tflite import TFLITE_REPAIRS, tflite_builder

        builder = tflite_builder(ref, calibration, out / ".attempts")
        strategies = TFLITE_REPAIRS if strategies is DEFAULT_REPAIRS else strategies
    else:
        builder = _onnx_builder(ref, calibration, symmetric_s8=target == "tensorrt-qdq")
    work = out / ".attempts"
    result = run_gate(builder, ref_eval, images, strategies, config, work, log)
    artifact = _install(result.artifact.directory, out) if result.passed else None
    if artifact is None and fallback:
        artifact = _install(_fallback(ref, target, work / "fallback").directory, out)
    report = _report(ref, artifact, result, calibration, config, profile, eval_info, started, latency_runs, work)
    shutil.rmtree(work, ignore_errors=True)
    path = write_report(out, report)
    if not result.passed and not fallback:
        best = result.best
        closest = f"best: {best.strategy.name}: {best.verdict.reason}" if best else "no strategy tried"
        raise ConversionError(f"{precision.upper()} failed the accuracy gate after {len(result.attempts)} attempts "
                              f"({closest}); "
                              f"see {path}. Use --fallback to ship FP32"
                              + (", or calibrate on deployment frames." if precision == "int8" else "."))
    return artifact, report  # type: ignore[return-value]


def _runtime_fp32(ref: Artifact, artifact: Artifact, work: Path) -> Artifact | None:
    """The candidate runtime's own FP32 build, timed beside it (OpenVINO only: ORT FP32 is ``ref``)."""
    if artifact.manifest.runtime != "openvino" or artifact.manifest.precision == "fp32":
        return None
    from edgetally.converters.targets.openvino import convert_fp32

    directory = work / "runtime-fp32"
    directory.mkdir(parents=True, exist_ok=True)
    convert_fp32(ref.model_path, directory / "model.fp32.xml")
    return derive(ref, directory, "model.fp32.xml", format="openvino", runtime="openvino", precision="fp32")


def _report(ref: Artifact, artifact: Artifact | None, result: GateResult, calibration: CalibrationSet | None,
            config: GateConfig, profile: str | None, eval_info: dict | None, started: float, runs: int,
            work: Path) -> dict:
    accepted = result.attempts[-1] if result.passed else None
    fp32_size = model_bytes(ref)
    report: dict = {
        "passed": result.passed,
        "fallback": artifact is not None and not result.passed,
        "profile": profile,
        "strategy": accepted.strategy.describe() if accepted else None,
        "gate": {"max_map_drop_points": config.max_map_drop, "min_agreement_f1": config.min_agreement},
        "accuracy": result.best.verdict.metrics if result.best else {},
        "attempts": [a.as_dict() for a in result.attempts],
        "calibration": calibration.provenance() if calibration is not None else None,
        "evaluation": eval_info or {},
        "sizes": {"fp32_bytes": fp32_size},
        "tools": tool_versions("onnx", "onnxruntime", "openvino", "nncf", "numpy"),
    }
    if artifact is not None:
        size = model_bytes(artifact)
        report["model_file"] = artifact.manifest.model_file
        report["precision"] = artifact.manifest.precision
        report["sizes"].update({"artifact_bytes": size, "ratio": round(size / fp32_size, 3)})
        report["latency"] = (latency_table(ref, artifact, runs=runs, runtime_fp32=_runtime_fp32(ref, artifact, work))
                             if runs > 0 else {"skipped": "latency runs set to 0"})
    report["conversion_seconds"] = round(time.perf_counter() - started, 1)
    return report
