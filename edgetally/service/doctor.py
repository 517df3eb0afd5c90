"""`edge doctor`: what the person at the board needs to know, as one OK/WARN/FAIL table.

Cameras found, runtimes importable (with versions), the CPU (does it have an INT8 dot product),
the artifact (manifest, hash, loads and runs one frame), the config valid, the MQTT broker
reachable, the state directory writable. Exit 1 when any check FAILs, so it can gate an install
script.
"""

from __future__ import annotations

import importlib
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = Path("/etc/edgetally/config.yaml")
DEFAULT_MODEL = Path("/opt/edgetally/model")


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # OK | WARN | FAIL | SKIP
    detail: str


def check_config(path: Path | None) -> tuple[list[Check], Any]:
    """Validate the config; return the parsed settings (None when invalid or absent)."""
    if path is None:
        return [Check("config", "SKIP", f"no --config and no {DEFAULT_CONFIG}")], None
    from edgetally.config import load_config, validate_file

    errors = validate_file(path)
    if errors:
        more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
        return [Check("config", "FAIL", "; ".join(errors[:3]) + more)], None
    return [Check("config", "OK", str(path))], load_config(path)


def list_cameras(dev: Path = Path("/dev")) -> list[str]:
    """'/dev/video0 (UVC Camera)' for each V4L2 node; the name comes from sysfs when present."""
    found = []
    for node in sorted(dev.glob("video*"), key=lambda p: (len(p.name), p.name)):
        name_file = Path("/sys/class/video4linux") / node.name / "name"
        name = name_file.read_text().strip() if name_file.is_file() else "?"
        found.append(f"{node} ({name})")
    return found


def check_cameras(source: str | None) -> list[Check]:
    cams = list_cameras()
    listing = ", ".join(cams) if cams else "no /dev/video* nodes"
    if source is None:
        return [Check("cameras", "OK" if cams else "WARN", listing)]
    if source.startswith("/dev/video"):
        if not Path(source).exists():
            return [Check("camera", "FAIL", f"{source} not found; found: {listing}")]
        ok = os.access(source, os.R_OK | os.W_OK)
        return [
            Check(
                "camera",
                "OK" if ok else "FAIL",
                source + ("" if ok else " exists but is not readable+writable (add the user to group video)"),
            )
        ]
    if source.startswith("picamera2:"):
        try:
            importlib.import_module("picamera2")
            return [Check("camera", "OK", f"{source}: picamera2 importable; {listing}")]
        except ImportError as exc:
            return [
                Check(
                    "camera",
                    "FAIL",
                    f"{source}: {exc} (apt install python3-picamera2; venv needs --system-site-packages)",
                )
            ]
    if "://" in source:
        return [check_tcp("camera stream", source, default_port=554)]
    exists = Path(source).exists()
    return [Check("source", "OK" if exists else "FAIL", source + ("" if exists else " not found"))]


def check_runtimes(needed: str | None) -> list[Check]:
    checks = []
    from edgetally.runtimes import RUNTIMES

    for runtime, entry in RUNTIMES.items():
        status, detail = ("FAIL" if runtime == needed else "SKIP"), "not installed"
        for module_name in entry.provides:
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:  # a broken install raises more than ImportError
                detail = f"{module_name}: {type(exc).__name__}: {exc}"[:160]
                continue
            status, detail = "OK", f"{module_name} {getattr(module, '__version__', '?')}"
            break
        checks.append(
            Check(f"runtime {runtime}", status, detail + (" (the artifact needs it)" if runtime == needed else ""))
        )
    return checks


def check_artifact(model: Path | None, threads: int) -> tuple[list[Check], str | None]:
    """Manifest valid, model hash matches, runtime loads it and runs one zero frame."""
    if model is None:
        return [Check("artifact", "SKIP", "no --model and no model in the config")], None
    from edgetally.artifact import Artifact
    from edgetally.errors import EdgeError
    from edgetally.runtimes import load_runtime

    try:
        artifact = Artifact.load(model, verify_hash=True)
    except (EdgeError, OSError) as exc:
        return [Check("artifact", "FAIL", str(exc)[:300])], None
    m = artifact.manifest
    checks = [
        Check(
            "artifact",
            "OK",
            f"{model}: {m.model_file} {m.precision} {m.runtime}, sha256 ok, "
            f"{len(m.labels)} labels, profile {m.profile or '-'}",
        )
    ]
    try:
        import numpy as np

        runtime = load_runtime(artifact, threads=threads)
        tensor = np.zeros(m.input.shape, dtype=m.input.dtype)
        runtime.infer(tensor)  # warm-up
        t0 = time.perf_counter()
        runtime.infer(tensor)
        checks.append(Check("artifact runs", "OK", f"one frame in {(time.perf_counter() - t0) * 1000:.1f} ms"))
    except Exception as exc:  # report, don't crash: this is a diagnostic tool
        checks.append(Check("artifact runs", "FAIL", f"{type(exc).__name__}: {exc}"[:300]))
    return checks, m.runtime


def check_tcp(name: str, url: str, default_port: int, timeout: float = 3.0) -> Check:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or default_port
    if not host:
        return Check(name, "FAIL", f"{url}: no host")
    t0 = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        return Check(name, "FAIL", f"{host}:{port} unreachable: {exc.strerror or exc}")
    return Check(name, "OK", f"{host}:{port} accepts TCP ({(time.perf_counter() - t0) * 1000:.0f} ms)")


def check_mqtt(settings: Any) -> list[Check]:
    if settings is None or settings.mqtt is None:
        return [Check("mqtt broker", "SKIP", "no mqtt section in the config")]
    from edgetally.errors import ConfigError
    from edgetally.sinks.mqtt_settings import MqttSettings

    mqtt = MqttSettings.model_validate(settings.mqtt)
    broker = mqtt.broker
    checks = [check_tcp("mqtt broker", f"mqtt://{broker.host}:{broker.port}", broker.port)]
    if mqtt.password_credential or mqtt.password_file:
        try:
            mqtt.resolve_password()
            checks.append(Check("mqtt password", "OK", "readable"))
        except ConfigError as exc:
            checks.append(Check("mqtt password", "WARN" if mqtt.password_credential else "FAIL", str(exc)[:200]))
    return checks


def check_state_dir() -> list[Check]:
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    path = Path(state) if state else Path("/var/lib/edgetally")
    if not path.exists():
        return [Check("state dir", "SKIP", f"{path} does not exist (systemd creates it on the first start)")]
    ok = os.access(path, os.W_OK)
    return [Check("state dir", "OK" if ok else "WARN", f"{path}" + ("" if ok else " not writable by this user"))]


def check_cpu() -> Check:
    """The CPU and whether it has an INT8 dot product: without one an INT8 model gains less (edgetally.cpu)."""
    from edgetally.cpu import describe_cpu

    return Check("cpu", "OK", str(describe_cpu()["summary"]))


def run_checks(config: Path | None, model: Path | None, threads: int = 1) -> list[Check]:
    checks, settings = check_config(config)
    if settings is not None:
        model = model or settings.model
    checks += check_cameras(settings.source if settings is not None else None)
    artifact_checks, needed = check_artifact(model, threads)
    checks += check_runtimes(needed) + [check_cpu()] + artifact_checks
    checks += check_mqtt(settings) + check_state_dir()
    return checks


def format_table(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    return "\n".join(f"{c.status:<5} {c.name:<{width}}  {c.detail}" for c in checks)
