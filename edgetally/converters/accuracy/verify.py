"""``edge verify``: re-run the accuracy gate on an existing artifact against its FP32 reference."""

from __future__ import annotations

from pathlib import Path

from edgetally.artifact import REFERENCE_DIR, Artifact
from edgetally.converters.accuracy.calibration import CalibrationSet
from edgetally.converters.accuracy.evaluate import load_eval_set
from edgetally.converters.accuracy.gate import GateConfig, Verdict, evaluate_reference, judge
from edgetally.converters.report import read_report
from edgetally.errors import ConversionError


def find_reference(artifact: Artifact, reference: Path | None) -> Artifact:
    """The FP32 artifact to compare against: given explicitly, or the one stored inside the artifact."""
    if reference is not None:
        return Artifact.load(reference)
    stored = artifact.directory / REFERENCE_DIR
    if stored.is_dir():
        return Artifact.load(stored)
    raise ConversionError(
        f"{artifact.directory}: has no {REFERENCE_DIR}/ FP32 artifact; pass --reference FP32_ARTIFACT"
    )


def calibration_hashes(artifact: Artifact) -> list[str]:
    """Hashes of the images the artifact was calibrated on (never evaluated on)."""
    report = read_report(artifact.directory) or {}
    return list(report.get("calibration", {}).get("sha256", []))


def verify(
    artifact_dir: Path,
    eval_images: Path,
    eval_labels: Path | None = None,
    reference: Path | None = None,
    config: GateConfig = GateConfig(),
    limit: int | None = None,
    calibration: CalibrationSet | None = None,
) -> Verdict:
    """Judge the artifact in ``artifact_dir`` against its FP32 reference on the given images."""
    artifact = Artifact.load(artifact_dir)
    ref = find_reference(artifact, reference)
    exclude = calibration.sha256 if calibration is not None else calibration_hashes(artifact)
    images = load_eval_set(eval_images, eval_labels, exclude, limit=limit)
    return judge(evaluate_reference(ref, images, config), artifact, images, config)
