"""Derive an artifact (INT8, FP16, another runtime) from the FP32 reference artifact's manifest.

The input spec, decoder, labels and source hash are inherited unchanged: only what the new model
file changes (format, runtime, precision, hash, output quantisation, tool versions) is rewritten.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

from edgetally.artifact import Artifact, sha256_file

FALLBACK_NOTE = "no reduced-precision model passed the accuracy gate: FP32 fallback (--fallback)"


def tool_versions(*modules: str) -> dict[str, str]:
    """Installed versions of the named distributions (absent ones are left out)."""
    from importlib import metadata

    versions = {}
    for name in ("edgetally", *modules):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def derive(
    reference: Artifact,
    directory: Path,
    model_file: str,
    *,
    format: str,
    runtime: str,
    precision: str,
    notes: list[str] | None = None,
    tools: dict[str, str] | None = None,
    **updates,
) -> Artifact:
    """Write ``directory/manifest.json`` for ``directory/model_file`` (which must exist already)."""
    directory = Path(directory)
    manifest = reference.manifest.model_copy(
        update={
            "format": format,
            "runtime": runtime,
            "precision": precision,
            "model_file": model_file,
            "model_sha256": sha256_file(directory / model_file),
            "tools": {**reference.manifest.tools, **(tools or {})},
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "notes": list(notes or []),
            **updates,
        }
    )
    artifact = Artifact(directory, type(manifest).model_validate(manifest.model_dump()))
    artifact.save()
    return artifact


def copy_reference(reference: Artifact, directory: Path) -> Artifact:
    """A copy of the FP32 artifact inside ``directory/fp32`` (the report's baseline travels with it)."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(reference.model_path, target / reference.manifest.model_file)
    artifact = Artifact(target, reference.manifest)
    artifact.save()
    return artifact
