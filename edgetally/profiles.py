"""Device profiles (edgetally/device_configs/*.yaml): which runtime, precision, input size and threads a board gets."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edgetally.errors import ConfigError
from edgetally.runtimes import RUNTIMES, RuntimeName, check_format

PROFILES_DIR = Path(__file__).resolve().parent / "device_configs"  # package data: present in a wheel too


class CameraDefaults(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["picamera2", "v4l2", "rtsp", "gstreamer", "file"]
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    fps: int = Field(gt=0)


class Deploy(BaseModel):
    """How `edge bundle` installs the runner on the board.

    extra: the ONE runtime extra (default: the runtime's); dropins: systemd/dropins/<name>.conf;
    system_site_packages: the venv sees apt packages (Picamera2 and libcamera on a Pi);
    platforms / python_version: pip --platform tags and Python for `edge bundle --with-deps`
    (empty: this machine's); pip_constraints: pins the board needs (Raspberry Pi OS's apt numpy 1.x).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    extra: str | None = None
    dropins: list[str] = Field(default_factory=lambda: ["v4l2"])
    system_site_packages: bool = False
    platforms: list[str] = Field(default_factory=list)
    python_version: str | None = None
    pip_constraints: list[str] = Field(default_factory=list)


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    board: str
    runtime: RuntimeName
    format: str  # one of the runtime's formats (edgetally.runtimes.RUNTIMES)
    precision: Literal["fp32", "fp16", "int8"]
    input_size: int = Field(gt=0)
    threads: int = Field(ge=1)
    io_dtype: Literal["float32", "int8", "uint8"] = "float32"
    # Is INT8 expected to beat FP32 on this board? "with-activation-replacement": only once SiLU is
    # replaced by the activation the runtime's INT8 kernels fuse (`edge convert --activation auto`).
    int8_pays: Literal["yes", "no", "with-activation-replacement", "unknown"] = "unknown"
    # Ship the runtime's FP32 model instead of an accepted INT8 one that ran slower (> 1.03x) on the
    # converting machine: only for profiles whose board is the same class of machine as the converter.
    speed_fallback: bool = False
    camera: CameraDefaults
    constraints: list[str] = Field(default_factory=list, description="notes for the person deploying")
    deploy: Deploy = Field(default_factory=Deploy)

    @model_validator(mode="after")
    def _runtime_runs_format(self) -> Profile:
        check_format(self.runtime, self.format)
        return self

    @property
    def extra(self) -> str:
        """The pip extra a board installs for this profile's runtime."""
        return self.deploy.extra or RUNTIMES[self.runtime].extra


def load_profile_file(path: Path) -> Profile:
    """Validate one profile; every error is reported as ``file:line: key: message``."""
    from edgetally.config.loader import format_errors, read_yaml

    raw, root = read_yaml(path)
    try:
        profile = Profile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError("\n".join(format_errors(path, exc, root))) from exc
    if profile.name != path.stem:
        raise ConfigError(f"{path}: name '{profile.name}' must match the file name '{path.stem}'")
    return profile


def list_profiles(directory: Path = PROFILES_DIR) -> list[Profile]:
    return [load_profile_file(p) for p in sorted(Path(directory).glob("*.yaml"))]


def get_profile(name_or_path: str, directory: Path = PROFILES_DIR) -> Profile:
    """A profile by name (edgetally/device_configs/NAME.yaml), by a unique start of a name
    ("jetson"), or by path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return load_profile_file(path)
    names = sorted(p.stem for p in Path(directory).glob("*.yaml"))
    matches = [n for n in names if n == name_or_path] or [n for n in names if n.startswith(name_or_path)]
    if len(matches) != 1:
        known = ", ".join(names) or "none"
        what = "ambiguous" if matches else "unknown"
        raise ConfigError(f"{what} profile '{name_or_path}'; known: {known}")
    return load_profile_file(Path(directory) / f"{matches[0]}.yaml")
