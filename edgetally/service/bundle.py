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
from pathlib import Path

from edgetally.errors import ConfigError, EdgeError
from edgetally.profiles import Profile, get_profile


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
    for platform in profile.deploy.platforms:
        args += ["--platform", platform]
    if profile.deploy.platforms:
        args += ["--implementation", "cp"]
    if profile.deploy.python_version:
        args += ["--python-version", profile.deploy.python_version]
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
    values = {
        "PROFILE": profile.name,
        "EXTRA": profile.extra,
        "DROPINS": " ".join(profile.deploy.dropins),
        "SYSTEM_SITE_PACKAGES": "1" if profile.deploy.system_site_packages else "0",
        "VERSION": version,
        "WHEEL": wheel.name,
        "OFFLINE": "1" if offline else "0",
    }
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
    (stage / "constraints.txt").write_text("".join(c + "\n" for c in profile.deploy.pip_constraints))
    if with_deps:
        download_deps(wheel, profile, wheels, stage / "constraints.txt")
    shutil.copytree(artifact, stage / "artifact", ignore=shutil.ignore_patterns("__pycache__", "*.report.*"))
    shutil.copy2(config, stage / "config.yaml")
    (stage / "systemd" / "dropins").mkdir(parents=True)
    shutil.copy2(root / "systemd" / "edgetally.service", stage / "systemd")
    for name in profile.deploy.dropins:
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


def make_bundle(
    profile_name: str, artifact: Path, config: Path, out: Path, with_deps: bool = False, project: Path | None = None
) -> Path:
    root = project_root(project)
    profile = get_profile(profile_name)
    with tempfile.TemporaryDirectory(prefix="edgetally-bundle-") as tmp:
        stage = Path(tmp) / "edgetally-bundle"
        assemble(stage, root, profile, artifact, config, with_deps)
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".part")
        with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
            tar.add(stage, arcname="edgetally-bundle")
        partial.replace(out)
    return out
