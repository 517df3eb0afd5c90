"""The artifact: the converter -> runner contract.

An artifact is a directory holding the model file and ``manifest.json``. The manifest says
everything the runner needs to feed the model and read its outputs; the runner guesses nothing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edgetally.errors import ArtifactError
from edgetally.runtimes import RuntimeName, check_format

MANIFEST_NAME = "manifest.json"
# An INT8/FP16 artifact's FP32 model (the gate's baseline), and under it REFERENCE_DIR/RUNTIME/ that runtime's
# own FP32 build where the converter made one: what `edge bench` compares with on the board.
REFERENCE_DIR = "reference"
SCHEMA_VERSION = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Quantization(_Strict):
    """Affine quantisation of a tensor: real = (q - zero_point) * scale."""

    scale: float
    zero_point: int


class InputSpec(_Strict):
    name: str
    shape: list[int] = Field(description="e.g. [1, 3, 416, 416] (NCHW) or [1, 416, 416, 3] (NHWC)")
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    dtype: Literal["float32", "float16", "uint8", "int8"] = "float32"
    quantization: Quantization | None = None
    color: Literal["BGR", "RGB"] = "BGR"
    # Applied as (pixel - mean) / std on 0-255 pixels, per channel in the model's colour order.
    mean: list[float] = Field(default_factory=lambda: [0.0, 0.0, 0.0])
    std: list[float] = Field(default_factory=lambda: [1.0, 1.0, 1.0])
    resize: Literal["letterbox", "stretch"] = "letterbox"
    letterbox_align: Literal["top-left", "center"] = "top-left"
    pad_value: int = 114

    @property
    def height(self) -> int:
        return self.shape[2] if self.layout == "NCHW" else self.shape[1]

    @property
    def width(self) -> int:
        return self.shape[3] if self.layout == "NCHW" else self.shape[2]

    @model_validator(mode="after")
    def _shape_fits_layout(self) -> InputSpec:
        if len(self.shape) != 4 or self.shape[0] != 1:
            raise ValueError(f"input shape must be [1, C, H, W] or [1, H, W, C], got {self.shape}")
        channels = self.shape[1] if self.layout == "NCHW" else self.shape[3]
        if channels != 3:
            raise ValueError(f"input has {channels} channels for layout {self.layout}; expected 3")
        return self


class OutputPart(_Strict):
    """One model tensor holding a slice (along the last axis) of a logical output."""

    name: str
    shape: list[int]
    dtype: str = "float32"
    quantization: Quantization | None = None


class OutputSpec(_Strict):
    """A logical output as the decoder reads it (float32 after dequantisation, in this shape)."""

    name: str
    shape: list[int]
    dtype: str = "float32"
    quantization: Quantization | None = None
    role: Literal["raw", "boxes", "scores", "class_ids", "count"] = "raw"
    # Full-integer models: a packed output (YOLOX [1, N, 4 + 1 + nc]) is exported as separate tensors
    # so box offsets and probabilities each get their own INT8 scale. The runtime dequantises each
    # part with its own parameters and concatenates them along the last axis, in this order, into
    # ``shape``. Empty (every artifact before this field existed): the model tensor is ``name``.
    parts: list[OutputPart] = Field(default_factory=list)

    @model_validator(mode="after")
    def _parts_fill_shape(self) -> OutputSpec:
        if self.parts:
            last = sum(p.shape[-1] for p in self.parts if p.shape)
            if any(p.shape[:-1] != self.shape[:-1] for p in self.parts) or last != self.shape[-1]:
                raise ValueError(
                    f"parts {[p.shape for p in self.parts]} do not concatenate (last axis) to {self.shape}"
                )
        return self


class DecoderSpec(_Strict):
    family: str = Field(description="a name in edgetally.postprocess.DECODERS")
    strides: list[int] = Field(default_factory=lambda: [8, 16, 32])
    score_threshold: float = 0.25
    nms_iou: float = 0.45
    max_detections: int = 300
    class_agnostic_nms: bool = False
    # After NMS, drop a box sharing this share of the smaller box's area with a better box, any
    # class (a vehicle's part boxed inside it on a top-down view); 0 = off.
    drop_contained: float = Field(default=0.0, ge=0.0, le=1.0)
    # boxes_scores only: are boxes in input-tensor pixels or normalised 0..1?
    boxes_normalized: bool = False

    @field_validator("family")
    @classmethod
    def _known_family(cls, value: str) -> str:
        from edgetally.postprocess import DECODERS  # imports this module: resolved at call time

        if value not in DECODERS:
            raise ValueError(f"unknown decoder family {value!r}; known: {', '.join(sorted(DECODERS))}")
        return value


class Manifest(_Strict):
    schema_version: int = SCHEMA_VERSION
    format: str  # one of the runtime's formats (edgetally.runtimes.RUNTIMES)
    runtime: RuntimeName
    model_file: str
    precision: Literal["fp32", "fp16", "int8", "mixed"]
    input: InputSpec
    outputs: list[OutputSpec]
    decoder: DecoderSpec
    labels: list[str]
    source_model_sha256: str
    model_sha256: str
    profile: str | None = None
    tools: dict[str, str] = Field(default_factory=dict)
    created: str = ""
    notes: list[str] = Field(default_factory=list)

    @field_validator("model_file")
    @classmethod
    def _inside_the_artifact(cls, value: str) -> str:
        """The model travels with its manifest: a path out of the directory (absolute, ``..``)
        would load a file the artifact does not contain (and `edge bundle` would ship none)."""
        path = PurePosixPath(value.replace("\\", "/"))
        if (
            not value
            or path.is_absolute()
            or PureWindowsPath(value).drive
            or ".." in path.parts
            or path.name in ("", ".")
        ):
            raise ValueError(f"must be a file name inside the artifact directory, got {value!r}")
        return value

    @model_validator(mode="after")
    def _runtime_runs_format(self) -> Manifest:
        check_format(self.runtime, self.format)
        return self


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Artifact:
    """An artifact directory with its validated manifest."""

    def __init__(self, directory: Path, manifest: Manifest) -> None:
        self.directory = directory
        self.manifest = manifest

    @property
    def model_path(self) -> Path:
        return self.directory / self.manifest.model_file

    @classmethod
    def load(cls, directory: str | Path, verify_hash: bool = True) -> Artifact:
        """Read and validate ``directory/manifest.json``; check the model file exists (and its hash)."""
        directory = Path(directory)
        manifest_path = directory / MANIFEST_NAME
        if not directory.is_dir():
            raise ArtifactError(f"{directory}: not an artifact directory (expected a folder with {MANIFEST_NAME})")
        if not manifest_path.is_file():
            raise ArtifactError(f"{manifest_path}: missing; is {directory} an artifact made by 'edge convert'?")
        try:
            raw = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as exc:
            raise ArtifactError(f"{manifest_path}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
        try:
            manifest = Manifest.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise ArtifactError(f"{manifest_path}: {loc}: {first['msg']}") from exc
        if manifest.schema_version != SCHEMA_VERSION:
            raise ArtifactError(
                f"{manifest_path}: schema_version {manifest.schema_version} is not supported (expected {SCHEMA_VERSION})"
            )
        artifact = cls(directory, manifest)
        if not artifact.model_path.exists():
            raise ArtifactError(f"{artifact.model_path}: model file named in the manifest is missing")
        if verify_hash and artifact.model_path.is_file():
            actual = sha256_file(artifact.model_path)
            if actual != manifest.model_sha256:
                raise ArtifactError(
                    f"{artifact.model_path}: sha256 {actual[:12]}... does not match the manifest "
                    f"({manifest.model_sha256[:12]}...); the model file is corrupt or was replaced"
                )
        return artifact

    def save(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / MANIFEST_NAME
        path.write_text(json.dumps(self.manifest.model_dump(mode="json"), indent=2) + "\n")
        return path
