"""Conversion targets: ONE table, the single source of truth for what ``edge convert`` can build.

A target names the runtime that runs its artifacts (``edgetally.runtimes.RUNTIMES``), the manifest
format, the precisions and model I/O dtypes it builds, the builder factories, its repair ladder,
its FP32 fallback, the activation its INT8 kernels fuse into a convolution (what
``--activation auto`` picks) and whether INT8 is expected to beat FP32 on that runtime. The CLI's
``--target`` choices, profile resolution (``resolve``), the gate's executor and the manifests all
read it. Adding a target = one module with its builder(s) + one row here + its tests.

Builders are referenced as ``"module:function"`` and imported only when used, so reading the
table costs no converter imports. Factory signatures:

* int8: ``factory(reference, calibration, work_dir, io_dtype) -> build(strategy, directory)``
* fp16: ``factory(reference) -> build(strategy, directory)``
* fallback: ``function(reference, directory) -> Artifact`` (the runtime's own FP32 model)
* finish: ``function(out, report, gate) -> None`` (extra files next to an accepted artifact)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edgetally.errors import ConversionError, UsageError
from edgetally.runtimes import RUNTIMES

_T = "edgetally.converters.targets"


@dataclass(frozen=True)
class Target:
    name: str
    runtime: str
    format: str
    int8: str  # "module:factory"
    fallback: str  # "module:function"
    repairs: str = "edgetally.converters.accuracy.strategy:DEFAULT_REPAIRS"  # "module:attr", cheapest rung first
    fp16: str | None = None
    io_dtypes: tuple[str, ...] = ("float32",)
    finish: str | None = None
    executor: str | None = None  # runtime that runs the artifact on the converting machine (None: its own)
    fused_activation: str = "relu"  # what --activation auto replaces SiLU with for this target
    time_own_fp32: bool = False  # report.json times the fallback (the runtime's own FP32) beside ORT FP32
    unsupported: Mapping[str, str] = field(default_factory=dict)  # precision -> why it is not built

    @property
    def precisions(self) -> tuple[str, ...]:
        return ("int8",) + (("fp16",) if self.fp16 else ())

    def load(self, role: str) -> Callable[..., Any]:
        """What ``role`` names ('int8', 'fp16', 'fallback', 'finish' builders; 'repairs' ladder), imported now."""
        spec = getattr(self, role)
        if spec is None:
            raise ConversionError(f"target {self.name}: no {role} builder")
        module, _, attr = spec.partition(":")
        return getattr(importlib.import_module(module), attr)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "runtime": self.runtime,
            "format": self.format,
            "precisions": list(self.precisions),
            "io_dtypes": list(self.io_dtypes),
            "fused_activation": self.fused_activation,
        }


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        # U8 activations / S8 per-channel weights QDQ (onnxruntime fuses QDQ Conv+Relu into one QLinearConv).
        Target(
            "onnxruntime",
            "onnxruntime",
            "onnx",
            f"{_T}.onnxruntime:int8_builder",
            f"{_T}.onnxruntime:fp32_fallback",
            fp16=f"{_T}.fp16:onnx_fp16_builder",
        ),
        # NNCF preset MIXED; oneDNN fuses ReLU and HSwish into INT8 convolutions as post-ops. HardSwish: YOLOX-nano
        # INT8 0.71x ORT FP32 (ReLU 0.61x) but its refit alone recovers 28.1 of 33.7 mAP50-95 points (ReLU 5.0).
        Target(
            "openvino",
            "openvino",
            "openvino",
            f"{_T}.openvino:int8_builder",
            f"{_T}.openvino:fp32_fallback",
            fp16=f"{_T}.fp16:openvino_fp16_builder",
            time_own_fp32=True,
            fused_activation="hardswish",
            repairs="edgetally.converters.accuracy.strategy:OPENVINO_REPAIRS",
        ),
        # ai-edge-quantizer, int8 input and float output; XNNPACK fuses ReLU into its INT8 convolutions.
        Target(
            "litert",
            "litert",
            "tflite",
            f"{_T}.tflite:tflite_builder",
            f"{_T}.onnxruntime:fp32_fallback",
            repairs=f"{_T}.tflite:TFLITE_REPAIRS",
            unsupported={
                "fp16": "FP16 TFLite is not implemented; use an onnxruntime or openvino "
                "profile, or no profile (onnxruntime)"
            },
        ),
        # Full-integer TFLite (integer input AND outputs): LiteRT on a CPU, or the Coral Edge TPU after edgetpu_compiler.
        Target(
            "litert-full-integer",
            "litert",
            "tflite",
            f"{_T}.tflite_full_int:full_integer_builder",
            f"{_T}.onnxruntime:fp32_fallback",
            repairs=f"{_T}.tflite_full_int:FULL_INTEGER_REPAIRS",
            io_dtypes=("int8", "uint8"),
            unsupported={"fp16": "FP16 TFLite is not implemented; use an onnxruntime or openvino profile"},
        ),
        # S8 symmetric QDQ ONNX; the engine is built on the Jetson (edgetally.runtimes.tensorrt). Gated here with onnxruntime.
        Target(
            "tensorrt",
            "tensorrt",
            "onnx-tensorrt",
            f"{_T}.tensorrt:int8_builder",
            f"{_T}.tensorrt:fp32_fallback",
            finish=f"{_T}.tensorrt:finish",
            executor="onnxruntime",
            unsupported={
                "fp16": "its INT8 artifact already carries model.fp16.onnx and the trtexec --fp16 line: "
                "drop --precision fp16"
            },
        ),
    )
}


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise UsageError(f"target {name!r} is not known; known: {', '.join(TARGETS)}")
    return TARGETS[name]


def executor_for(runtime: str) -> str | None:
    """The runtime that executes artifacts of ``runtime`` on the converting machine (None: the runtime itself)."""
    return next((t.executor for t in TARGETS.values() if t.runtime == runtime and t.executor), None)


def resolve(runtime: str | None = None, io_dtype: str = "float32", name: str | None = None) -> Target:
    """The target for an explicit ``name``, or for a profile's runtime + io_dtype (default: onnxruntime)."""
    if name is not None:
        target = get_target(name)
        if runtime is not None and target.runtime != runtime:
            raise UsageError(f"--target {name} builds for runtime {target.runtime}, the profile runs {runtime}")
    else:
        runtime = runtime or "onnxruntime"
        if runtime not in RUNTIMES:
            raise ConversionError(f"runtime {runtime!r} is not known; known: {', '.join(RUNTIMES)}")
        matches = [t for t in TARGETS.values() if t.runtime == runtime]
        target = next((t for t in matches if io_dtype in t.io_dtypes), None)
        if target is None:
            with_io = sorted({t.runtime for t in TARGETS.values() if io_dtype in t.io_dtypes})
            raise ConversionError(
                f"io_dtype {io_dtype} (model input and output) is implemented for runtime(s) "
                f"{', '.join(with_io)} only, not {runtime}"
            )
    if io_dtype not in target.io_dtypes:
        raise ConversionError(
            f"target {target.name}: io_dtype {io_dtype} not built; it builds {', '.join(target.io_dtypes)}"
        )
    return target


def check_precision(target: Target, precision: str) -> None:
    if precision not in target.precisions:
        reason = target.unsupported.get(precision, f"it builds {', '.join(target.precisions)}")
        raise UsageError(f"target {target.name}: {precision.upper()} is not built here: {reason}")
