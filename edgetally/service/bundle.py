"""`edge bundle`: one tar.gz with everything a board needs to install and run offline.

    edgetally-bundle/
      bundle.env            PROFILE, EXTRA, DROPINS, SYSTEM_SITE_PACKAGES, VERSION, WHEEL, OFFLINE
      install.sh uninstall.sh constraints.txt SHA256SUMS deployment.md
      wheels/               the project's wheel (+ every dependency for the board with --with-deps)
      artifact/             the converted model + manifest.json
      config.yaml           the run config (validated here, before it travels)
      systemd/              edgetally.service + this profile's drop-ins

Runs on a workstation from the project checkout (it builds the wheel from source).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from edgetally.errors import ConfigError, EdgeError
from edgetally.profiles import PROFILES_DIR
from edgetally.runtime_table import RUNTIMES

RUNTIME_EXTRA = {name: info.extra for name, info in RUNTIMES.items()}
_AARCH64 = ("manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64")


@dataclass(frozen=True)
class Profile:
    """What the bundle needs to know about a board."""

    name: str
    extra: str  # the ONE runtime extra installed on the board
    dropins: tuple[str, ...]  # systemd/dropins/<name>.conf
    system_site_packages: bool = False  # Picamera2 and libcamera come from apt on a Pi
    platforms: tuple[str, ...] = ()  # pip --platform tags for --with-deps; () = this machine
    python_version: str | None = None  # the board's Python, for --with-deps
    constraints: tuple[str, ...] = ()


# Used when edgetally/device_configs/<name>.yaml is absent or does not say. Raspberry Pi OS Bookworm ships
# Python 3.11 and numpy 1.24 (apt; Picamera2's simplejpeg is built against it), so the venv must
# keep numpy<2 and an OpenCV wheel that still supports it; JetPack 6 is Ubuntu 22.04 (Python 3.10).
FALLBACK = {
    "rpi4": Profile("rpi4", "ort", ("raspberrypi",), True, _AARCH64, "3.11", ("numpy<2", "opencv-python-headless<4.12")),
    "rpi5": Profile("rpi5", "ort", ("raspberrypi",), True, _AARCH64, "3.11", ("numpy<2", "opencv-python-headless<4.12")),
    # TensorRT is JetPack's (apt python3-libnvinfer): the venv sees it through the system site packages.
    "jetson": Profile("jetson", "tensorrt", ("jetson",), True, _AARCH64, "3.10"),
    "intel": Profile("intel", "openvino", ("v4l2", "openvino")),
    "coral": Profile("coral", "litert", ("v4l2", "coral")),
    "generic": Profile("generic", "ort", ("v4l2",)),
}


def load_profile(name: str, configs_dir: Path | None) -> Profile:
    """edgetally/device_configs/<name>.yaml (fields: runtime, and optionally extra, dropins,
    system_site_packages, platforms, python_version, constraints) over the fallback table."""
    base = FALLBACK.get(name) or FALLBACK.get(name.split("-")[0])
    path = configs_dir / f"{name}.yaml" if configs_dir else None
    data = yaml.safe_load(path.read_text()) if path is not None and path.is_file() else None
    if data is None:
        if base is None:
            raise ConfigError(f"profile {name!r}: no {path or 'edgetally/device_configs/' + name + '.yaml'} and not one of "
                              f"{', '.join(FALLBACK)}")
        return base
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping")
    base = base or FALLBACK["generic"]
    runtime = str(data.get("runtime", ""))
    extra = data.get("extra") or RUNTIME_EXTRA.get(runtime, base.extra)
    return Profile(
        name=name, extra=str(extra), dropins=tuple(data.get("dropins", base.dropins)),
        system_site_packages=bool(data.get("system_site_packages", base.system_site_packages)),
        platforms=tuple(data.get("platforms", base.platforms)),
        python_version=data.get("python_version", base.python_version),
        constraints=tuple(data.get("constraints", base.constraints)),
    )


def project_root(start: Path | None = None) -> Path:
    """The checkout that holds pyproject.toml, systemd/ and the edge package."""
    candidates = [start] if start else [Path(__file__).resolve().parents[2], Path.cwd()]
    for root in candidates:
        if root and (root / "pyproject.toml").is_file() and (root / "systemd" / "edgetally.service").is_file():
            return root
    raise ConfigError("edge bundle runs from the project checkout (pyproject.toml + systemd/): pass --project DIR")


def build_wheel(root: Path, out: Path) -> Path:
    """pip wheel from a clean copy of the sources, so the checkout gets no build/ directory."""
    with tempfile.TemporaryDirectory(prefix="edgetally-src-") as tmp:
        src = Path(tmp) / "src"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
        src.mkdir()
        for name in ("pyproject.toml", "README.md", "setup.py", "setup.cfg", "LICENSE", "MANIFEST.in"):
            if (root / name).is_file():
                shutil.copy2(root / name, src / name)
        for package in ("edgetally",):
            if (root / package).is_dir():
                shutil.copytree(root / package, src / package, ignore=ignore)
        _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(src))
    wheels = sorted(out.glob("edgetally-*.whl"))
    if not wheels:
        raise EdgeError(f"pip wheel made no edgetally wheel in {out}")
    return wheels[-1]


def download_deps(wheel: Path, profile: Profile, out: Path, constraints: Path) -> None:
    """Every dependency of the runner + the profile's runtime, as wheels for the board."""
    args = ["download", "--only-binary=:all:", "-d", str(out), "-c", str(constraints)]
    for platform in profile.platforms:
        args += ["--platform", platform]
    if profile.platforms:
        args += ["--implementation", "cp"]
    if profile.python_version:
        args += ["--python-version", profile.python_version]
    _pip(*args, f"{wheel}[{profile.extra}]")


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise EdgeError(f"{' '.join(cmd[2:5])} ... failed:\n{(result.stderr or result.stdout)[-2000:]}")


def _validate_inputs(artifact: Path, config: Path) -> None:
    from edgetally.artifact import Artifact
    from edgetally.config import validate_file

    Artifact.load(artifact, verify_hash=True)
    errors = validate_file(config)
    if errors:
        raise ConfigError("the config would not start on the board:\n  " + "\n  ".join(errors))


def _env_file(profile: Profile, wheel: Path, version: str, offline: bool) -> str:
    values = {"PROFILE": profile.name, "EXTRA": profile.extra, "DROPINS": " ".join(profile.dropins),
              "SYSTEM_SITE_PACKAGES": "1" if profile.system_site_packages else "0", "VERSION": version,
              "WHEEL": wheel.name, "OFFLINE": "1" if offline else "0"}
    return "".join(f"{k}='{v}'\n" for k, v in values.items())


def _checksums(stage: Path) -> str:
    lines = []
    for path in sorted(p for p in stage.rglob("*") if p.is_file() and p.name != "SHA256SUMS"):
        lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(stage)}\n")
    return "".join(lines)


def assemble(stage: Path, root: Path, profile: Profile, artifact: Path, config: Path, with_deps: bool) -> None:
    """Fill ``stage`` (the future edgetally-bundle/ directory)."""
    _validate_inputs(artifact, config)
    wheels = stage / "wheels"
    wheels.mkdir(parents=True)
    wheel = build_wheel(root, wheels)
    version = wheel.name.split("-")[1]
    (stage / "constraints.txt").write_text("".join(c + "\n" for c in profile.constraints))
    if with_deps:
        download_deps(wheel, profile, wheels, stage / "constraints.txt")
    shutil.copytree(artifact, stage / "artifact", ignore=shutil.ignore_patterns("__pycache__", "*.report.*"))
    shutil.copy2(config, stage / "config.yaml")
    (stage / "systemd" / "dropins").mkdir(parents=True)
    shutil.copy2(root / "systemd" / "edgetally.service", stage / "systemd")
    for name in profile.dropins:
        source = root / "systemd" / "dropins" / f"{name}.conf"
        if not source.is_file():
            raise ConfigError(f"profile {profile.name}: drop-in {source} not found")
        shutil.copy2(source, stage / "systemd" / "dropins")
    for script in ("install.sh", "uninstall.sh"):
        shutil.copy2(root / "systemd" / script, stage / script)
        os.chmod(stage / script, 0o755)
    if (root / "docs" / "deployment.md").is_file():
        shutil.copy2(root / "docs" / "deployment.md", stage / "deployment.md")
    (stage / "bundle.env").write_text(_env_file(profile, wheel, version, with_deps))
    (stage / "SHA256SUMS").write_text(_checksums(stage))


def make_bundle(profile_name: str, artifact: Path, config: Path, out: Path, with_deps: bool = False,
                project: Path | None = None) -> Path:
    root = project_root(project)
    profile = load_profile(profile_name, PROFILES_DIR)
    with tempfile.TemporaryDirectory(prefix="edgetally-bundle-") as tmp:
        stage = Path(tmp) / "edgetally-bundle"
        assemble(stage, root, profile, artifact, config, with_deps)
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".part")
        with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
            tar.add(stage, arcname="edgetally-bundle")
        partial.replace(out)
    return out
