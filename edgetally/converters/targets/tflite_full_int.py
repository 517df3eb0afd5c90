"""Full-integer TFLite INT8 (int8 or uint8 input AND outputs) for LiteRT and the Coral Edge TPU.

1. The packed output is split (edgetally.converters.graph.output_split) so box regressions and probabilities end in
   separate outputs: one INT8 scale each instead of one shared scale that collapses the boxes
   (the known-bad specimen's failure). YOLOX ``[1, N, 85]`` -> ``boxes [1, N, 4]`` + ``scores [1, N, 81]``.
   The all-integer rungs also split channels by range: the stem's (edgetally.converters.graph.stem_split), then
   every uneven Conv-SiLU-depthwise-SiLU-Conv chain's (edgetally.converters.graph.channel_split) with MSE activation
   ranges and output-grid clips (edgetally.converters.targets.tflite_ranges).
2. onnx2torch -> litert-torch FP32 .tflite -> ai-edge-quantizer (edgetally.converters.targets.tflite), with the
   input quantised on the exact preprocessing range (0..255 pixels: scale 1) and int8 outputs.
3. For ``io_dtype: uint8`` the int8 interface is rewritten to uint8 (edgetally.converters.graph.tflite_interface).
4. The manifest's output lists the parts with their own scale/zero point; the LiteRT runtime
   dequantises each and concatenates them back into the layout the decoder reads.

The artifact carries ``compile_edgetpu.sh``: ``edgetpu_compiler`` runs on an x86-64 Debian/Ubuntu
workstation (it is not pip-installable) and writes ``model.int8_edgetpu.tflite``; ops it cannot map
(and any op a repair kept float) run on the host CPU.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from edgetally.converters.accuracy.calibration import CalibrationSet
from edgetally.converters.accuracy.strategy import Strategy

MODEL_FILE = "model.int8.tflite"
EDGETPU_SCRIPT = "compile_edgetpu.sh"
EDGETPU_COMMAND = f"edgetpu_compiler -s -o . {MODEL_FILE}"
# Where the packed YOLOX head splits: 4 box regressions | objectness + class probabilities.
SPLITS = {"yolox": ([4], ["boxes", "scores"])}

# Measured on YOLOX-nano / coco128 (64 calibration, 64 other evaluation images, mAP50-95 points vs
# FP32 ONNX): every op INT8 -12.3 (the body's per-tensor activations, not the outputs: fake-quantising
# only the two outputs costs 0.1); + stem channel split -3.6 to -3.8 (still every op INT8; group ratios
# 2 and 1.5 gave -1.9 and -4.4: rounding luck, not a trend, so the ratio is not tuned); first conv float
# -12.9, first two convs float -2.6 (so the loss sits at the stem's first activation); percentile
# (99.99) ranges instead of min/max -11.0; float stem + head output convs with an INT8 tail -3.2 to
# -3.5; float stem + head convs + float tail (outputs still int8/uint8) -0.8, passes. The first rung
# is the one the Edge TPU runs whole; the last leaves float ops that the compiler hands to the CPU.
# The first rung, every op INT8, was found by per-tensor SNR (ai-edge-quantizer validate): depthwise
# convs after unevenly ranged inputs lost most (SNR 8 from an input at 152), and the default moving-average
# ranges depend on image order. Same protocol, adding one part at a time: + SiLU floors -2.95; depthwise-chain
# split + SiLU floors -2.50; + global min/max -0.16 but -4.30 with the calibration/evaluation halves swapped
# (min/max follows the most extreme image); + MSE ranges -1.16 (swapped -1.83); MSE measured on SiLU's output
# + sigmoid-logit clips -0.11 (swapped -1.28, where the float rung itself gives -1.21).
# Stem split with the quantiser's default ranges: the first all-integer attempt until the rung below
# superseded it (3.82 vs -0.11 points on the benchmark split, 2.89 vs 1.28 swapped). Kept out of the
# ladder (it cost ~70 s per conversion and never passed where the next rung failed), still built by tests.
STEM_SPLIT_ONLY = Strategy("full-integer+stem-split", keep_tail_float=False, split_stem_channels=True)
FULL_INTEGER_REPAIRS: tuple[Strategy, ...] = (
    Strategy(
        "full-integer+depthwise-split+mse-ranges+grid-clips",
        keep_tail_float=False,
        split_depthwise_channels=True,
        activation_ranges="mse",
        grid_clips=True,
    ),
    Strategy("integer-io+tail-float+float-stem+float-head", float_stem_convs=3, float_head_convs=True),
)


def input_range(reference: Any) -> tuple[float, float]:
    """(min, max) of the preprocessed input tensor over all 0..255 pixels, from the manifest's mean/std."""
    spec = reference.manifest.input
    ends = [(pixel - m) / s for m, s in zip(spec.mean, spec.std) for pixel in (0.0, 255.0)]
    return min(ends), max(ends)


def write_edgetpu_script(directory: Path) -> Path:
    script = Path(directory) / EDGETPU_SCRIPT
    body = "\n".join(
        [
            "#!/bin/sh",
            "# Compile for the Coral Edge TPU on an x86-64 Debian/Ubuntu workstation (not on the board):",
            "#   https://coral.ai/docs/edgetpu/compiler/ (apt-get install edgetpu-compiler)",
            "# Writes model.int8_edgetpu.tflite and model.int8_edgetpu.log (which ops run on the TPU).",
            "# `edge run` does not load the libedgetpu delegate yet: model.int8.tflite is what it runs (on the CPU).",
            "set -e",
            'cd "$(dirname "$0")"',
            EDGETPU_COMMAND,
            "",
        ]
    )
    script.write_text(body)
    script.chmod(0o755)
    return script


def _channel_split(strategy: Strategy) -> str:
    """Which exact channel-split rewrite a strategy asks for: "depthwise" (every uneven chain), "stem", or ""."""
    return "depthwise" if strategy.split_depthwise_channels else "stem" if strategy.split_stem_channels else ""


def _split_onnx(reference: Any, work: Path, calibration: CalibrationSet, channels: str) -> tuple[Path, list, dict]:
    """(ONNX with split outputs [and split channels, see _channel_split], the parts' shapes, build info)."""
    from edgetally.converters.graph.output_split import split_output
    from edgetally.errors import ConversionError

    family = reference.manifest.decoder.family
    if family not in SPLITS:
        raise ConversionError(
            f"full-integer TFLite is implemented for the yolox decoder (packed output split into "
            f"boxes and scores); decoder '{family}' is not supported yet"
        )
    source, info = reference.model_path, {}
    if channels == "stem":
        from edgetally.converters.graph.stem_split import split_stem_channels

        source = work / "stem-split.onnx"
        info = split_stem_channels(reference.model_path, source, calibration)
    elif channels == "depthwise":
        from edgetally.converters.graph.channel_split import split_depthwise_chains

        source = work / "depthwise-split.onnx"
        info = split_depthwise_chains(reference.model_path, source, calibration)
    bounds, names = SPLITS[family]
    target = work / (f"split-{channels}.onnx" if channels else "split.onnx")
    return target, split_output(source, target, bounds, names), info


def full_integer_builder(reference: Any, calibration: CalibrationSet, work_dir: Path, io_dtype: str):
    """A gate builder (strategy, directory) -> (full-integer TFLite artifact, build info) for edgetally.converters.build.

    Each graph variant (outputs split; and stem or depthwise-chain channels split) and its FP32 .tflite
    is made once (in ``work_dir``) and re-quantised per strategy.
    """
    from edgetally.converters.derive import tool_versions
    from edgetally.converters.targets.tflite import _require, onnx_to_fp32_tflite, quantize_tflite

    _require()
    work = Path(work_dir) / "fp32-tflite"
    work.mkdir(parents=True, exist_ok=True)
    variants: dict[str, tuple[Path, list, dict]] = {}

    def fp32_for(channels: str) -> tuple[Path, list, dict]:
        if channels not in variants:
            split, shapes, info = _split_onnx(reference, work, calibration, channels)
            fp32 = work / (f"fp32-{channels}-split.tflite" if channels else "fp32.tflite")
            info.update(onnx_to_fp32_tflite(split, fp32, calibration.tensors[:1]))
            variants[channels] = (fp32, shapes, info)
        return variants[channels]

    def build(strategy: Strategy, directory: Path) -> tuple[Any, dict]:
        fp32, shapes, fp32_info = fp32_for(_channel_split(strategy))
        directory.mkdir(parents=True, exist_ok=True)
        info = {
            **fp32_info,
            **quantize_tflite(fp32, directory / MODEL_FILE, calibration, strategy, input_range=input_range(reference)),
        }
        return _finish(
            reference,
            directory,
            strategy,
            io_dtype,
            shapes,
            info,
            tool_versions("litert-torch", "onnx2torch", "ai-edge-quantizer", "ai-edge-litert", "torch"),
        )

    return build


def _finish(
    reference: Any,
    directory: Path,
    strategy: Strategy,
    io_dtype: str,
    shapes: list[list[int]],
    info: dict,
    tools: dict[str, str],
) -> tuple[Any, dict]:
    from edgetally.converters.targets.tflite_wrap import wrap_split_tflite

    model = directory / MODEL_FILE
    if io_dtype == "uint8":
        from edgetally.converters.graph.tflite_interface import to_uint8_interface

        staged = directory / "int8-io.tflite"
        shutil.move(str(model), str(staged))
        to_uint8_interface(staged, model)
        staged.unlink()
    info.update(
        {"io": f"{io_dtype} input and outputs", "outputs_split": shapes, "edge_tpu_ready": info["ops_float"] == 0}
    )
    notes = [
        f"full-integer TFLite ({io_dtype} input and outputs), strategy {strategy.name}: "
        f"{info['ops_float']} of {info['ops_total']} ops kept float",
        f"output split into parts {shapes}, each with its own scale; the runtime concatenates them",
        *(
            [f"stem channels split into {info['stem_split_groups']} range groups (exact rewrite)"]
            if "stem_split_groups" in info
            else []
        ),
        *(
            [
                f"{info['depthwise_chains_split']} of {info['depthwise_chains']} Conv-SiLU-depthwise-SiLU-Conv chains "
                f"split into {info['depthwise_split_groups']} channel range groups (exact rewrite)"
            ]
            if "depthwise_chains_split" in info
            else []
        ),
        *(
            [
                f"activation ranges: {info['calibrator']}; {info['silu_floors']} SiLU inputs and "
                f"{info['sigmoid_logits_clipped']} sigmoid logits clipped where the op's output grid cannot see it"
            ]
            if "silu_floors" in info
            else []
        ),
        f"Edge TPU: run {EDGETPU_SCRIPT} ({EDGETPU_COMMAND}) on an x86-64 workstation"
        + ("" if info["ops_float"] == 0 else "; the float ops and everything after the first one run on the CPU"),
    ]
    write_edgetpu_script(directory)
    return wrap_split_tflite(model, reference, directory, shapes, notes, tools), info
