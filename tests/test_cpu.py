"""edgetally.cpu: which CPU a latency was measured on, from /proc/cpuinfo text (table of samples)."""

from __future__ import annotations

import pytest

from edgetally.cpu import describe_cpu

XEON_VNNI = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8481C\nflags\t\t: fpu sse avx avx2 avx512f avx512_vnni amx_int8\n"
EPYC_AVX2 = (
    "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse avx avx2 fma\nprocessor\t: 1\nmodel name\t: AMD EPYC\n"
)
ALDER_LAKE = "model name\t: 12th Gen Intel(R) Core(TM) i5-1235U\nflags\t\t: avx avx2 avx_vnni\n"
PI4 = "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU part\t: 0xd08\n\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n"
PI3_32BIT = "processor\t: 0\nmodel name\t: ARMv7 Processor rev 4 (v7l)\nFeatures\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm crc32\n"
PI5 = (
    "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm "
    "lrcpc dcpop asimddp\n\nModel\t\t: Raspberry Pi 5 Model B Rev 1.0\n"
)


@pytest.mark.parametrize(
    ("text", "machine", "model", "features", "dot", "summary_ends"),
    [
        (
            XEON_VNNI,
            "x86_64",
            "Intel(R) Xeon(R) Platinum 8481C",
            ["AMX-INT8", "AVX512-VNNI", "AVX-512", "AVX2"],
            True,
            "AVX2",
        ),
        (EPYC_AVX2, "x86_64", "AMD EPYC", ["AVX2"], False, "no INT8 dot product (VNNI): INT8 gains less here"),
        (ALDER_LAKE, "x86_64", "12th Gen Intel(R) Core(TM) i5-1235U", ["AVX-VNNI", "AVX2"], True, "AVX2"),
        (
            PI4,
            "aarch64",
            "Raspberry Pi 4 Model B Rev 1.4",
            ["NEON"],
            False,
            "no INT8 dot product (SDOT): INT8 gains less here",
        ),
        (
            PI3_32BIT,
            "armv7l",
            "ARMv7 Processor rev 4 (v7l)",
            ["NEON"],
            False,
            "no INT8 dot product (SDOT): INT8 gains less here",
        ),
        (PI5, "aarch64", "Raspberry Pi 5 Model B Rev 1.0", ["SDOT", "NEON"], True, "SDOT, NEON"),
        ("", "x86_64", None, [], False, "(instruction set not known)"),
    ],
    ids=["xeon-vnni", "epyc-avx2", "alder-lake", "pi4", "pi-armv7", "pi5", "no-cpuinfo"],
)
def test_describe_cpu(
    text: str, machine: str, model: str | None, features: list[str], dot: bool, summary_ends: str
) -> None:
    cpu = describe_cpu(text, machine)
    if model is not None:
        assert cpu["model"] == model
        assert str(cpu["summary"]).startswith(f"{model}: ")
    assert cpu["features"] == features and cpu["int8_dot_product"] is dot and cpu["machine"] == machine
    assert str(cpu["summary"]).endswith(summary_ends)


def test_describe_cpu_reads_this_machine() -> None:
    cpu = describe_cpu()
    assert cpu["summary"] and isinstance(cpu["int8_dot_product"], bool)
