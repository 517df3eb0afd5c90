"""FP32 ONNX -> FP16 artifacts, accepted through the same accuracy gate as INT8.

- onnxruntime (and TensorRT): ONNX with float16 weights and compute, input and output kept float32
  (onnxconverter-common, ``keep_io_types=True``) so the runner's preprocessing and decoders are
  unchanged. On a CPU without float16 arithmetic onnxruntime may insert casts: FP16 is for size and
  for GPUs (TensorRT), rarely for CPU speed -- the report's latency table says which.
- openvino: IR with FP16-compressed weights (``compress_to_fp16=True``); the CPU plugin decompresses
  them and computes in its default inference precision (bf16 or f32, by CPU).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from edgetally.artifact import Artifact
from edgetally.converters.accuracy.strategy import Strategy
from edgetally.errors import ConversionError

FP16 = Strategy("fp16", keep_tail_float=False)  # one "strategy": FP16 needs no calibration or repairs


def to_fp16_onnx(source: Path, out_path: Path) -> dict:
    """Write an FP16 ONNX of ``source`` with float32 input/output; returns what was done (for report.json)."""
    import onnx

    try:
        from onnxconverter_common import float16
    except ImportError as exc:
        raise ConversionError("FP16 ONNX needs onnxconverter-common: `pip install -e .[convert]`") from exc
    try:
        with warnings.catch_warnings():
            # it warns about every weight clipped to the float16 range; the accuracy gate judges the result
            warnings.simplefilter("ignore")
            model = float16.convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
        onnx.save(model, str(out_path))
    except Exception as exc:  # the converter raises untyped errors on unusual graphs
        raise ConversionError(f"{source}: FP16 ONNX conversion failed: {exc}") from exc
    return {"format": "onnx", "weights": "fp16", "compute": "fp16", "io": "float32"}


def to_fp16_openvino(source: Path, out_xml: Path) -> dict:
    import openvino as ov

    from edgetally.converters.targets.openvino import read_onnx

    model, folded = read_onnx(source)
    try:
        ov.save_model(model, str(out_xml), compress_to_fp16=True)
    except Exception as exc:
        raise ConversionError(f"{source}: OpenVINO FP16 conversion failed: {exc}") from exc
    return {
        "format": "openvino-ir",
        "weights": "fp16 (compressed)",
        "compute": "plugin default",
        "focus_folded": folded,
    }


def onnx_fp16_builder(reference: Artifact, runtime: str = "onnxruntime", format: str = "onnx"):
    """A gate builder (strategy, directory) -> (FP16 ONNX artifact, build info) for the target registry."""
    from edgetally.converters.derive import derive, tool_versions

    def build(_strategy: Strategy, directory: Path) -> tuple[Artifact, dict]:
        directory.mkdir(parents=True, exist_ok=True)
        info = to_fp16_onnx(reference.model_path, directory / "model.fp16.onnx")
        return derive(
            reference,
            directory,
            "model.fp16.onnx",
            format=format,
            runtime=runtime,
            precision="fp16",
            notes=["ONNX FP16 (float32 input/output)"],
            tools=tool_versions("onnx", "onnxruntime", "onnxconverter-common"),
        ), info

    return build


def openvino_fp16_builder(reference: Artifact):
    """A gate builder (strategy, directory) -> (FP16 IR artifact, build info) for the target registry."""
    from edgetally.converters.derive import derive, tool_versions

    def build(_strategy: Strategy, directory: Path) -> tuple[Artifact, dict]:
        directory.mkdir(parents=True, exist_ok=True)
        info = to_fp16_openvino(reference.model_path, directory / "model.fp16.xml")
        return derive(
            reference,
            directory,
            "model.fp16.xml",
            format="openvino",
            runtime="openvino",
            precision="fp16",
            notes=["OpenVINO IR, FP16 weights"],
            tools=tool_versions("openvino"),
        ), info

    return build
