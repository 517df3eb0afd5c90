"""Which CPU a latency was measured on, and whether it has an INT8 dot-product instruction.

An INT8 model's speed-up over FP32 depends on the CPU more than on anything the converter tunes:
the speed probe's OpenVINO INT8 YOLOX-nano ran at 0.68x ORT FP32 on an AVX512-VNNI machine and
0.89x on an AVX2 one (docs/int8.md, "Another CPU"). Without a dot-product instruction (x86 VNNI /
AMX, Arm SDOT) each INT8 multiply-add takes extra instructions. So report.json, ``edge bench`` and
``edge doctor`` say which CPU it is. Linux's /proc/cpuinfo only; elsewhere the model name is what
``platform`` says and the instruction set is not known.
"""

from __future__ import annotations

import platform
from pathlib import Path

# /proc/cpuinfo flag -> name, in the order a summary lists them (the best INT8 path first).
_X86 = (
    ("amx_int8", "AMX-INT8"),
    ("avx512_vnni", "AVX512-VNNI"),
    ("avx_vnni", "AVX-VNNI"),
    ("avx512f", "AVX-512"),
    ("avx2", "AVX2"),
)
_ARM = (
    ("i8mm", "I8MM"),
    ("asimddp", "SDOT"),
    ("asimd", "NEON"),
    ("neon", "NEON"),  # 32-bit Arm kernels (armv7l) call it neon
)
DOT_PRODUCT = frozenset({"amx_int8", "avx512_vnni", "avx_vnni", "asimddp", "i8mm"})
_MODEL_KEYS = ("model name", "Model", "cpu model", "Hardware")


def describe_cpu(cpuinfo: str | None = None, machine: str | None = None) -> dict[str, object]:
    """{"model", "machine", "features", "int8_dot_product", "summary"} of this CPU, or of the given
    /proc/cpuinfo text and ``platform.machine()`` value (tests)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text(errors="replace") if path.is_file() else ""
    machine = machine if machine is not None else platform.machine()
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    model = next((fields[k] for k in _MODEL_KEYS if fields.get(k)), "") or platform.processor() or machine or "unknown"
    arm = bool(flags & {"asimd", "neon"}) or machine.lower().startswith(("aarch64", "arm"))
    known = _ARM if arm else _X86
    features = [name for flag, name in known if flag in flags]
    dot = bool(flags & DOT_PRODUCT)
    if not flags:
        summary = f"{model} (instruction set not known)"
    else:
        listed = ", ".join(features) if features else "no SIMD extensions listed"
        what = "VNNI" if known is _X86 else "SDOT"
        summary = f"{model}: {listed}" + ("" if dot else f"; no INT8 dot product ({what}): INT8 gains less here")
    return {"model": model, "machine": machine, "features": features, "int8_dot_product": dot, "summary": summary}
