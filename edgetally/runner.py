"""`edge run`: settings -> pipeline (with the service hooks) -> summary, with signals and output files."""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from edgetally.build import build_pipeline
from edgetally.config.models import RunSettings
from edgetally.hooks import Hook
from edgetally.pipeline import Pipeline
from edgetally.progress import Progress
from edgetally.service.attach import ServiceHooks, install_sighup

log = logging.getLogger(__name__)


def run_counting(
    settings: RunSettings,
    reload: Callable[[], RunSettings] | None = None,
    health_addr: str | None = None,
    hooks: Sequence[Hook] = (),
    config_path: Path | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Run one counting pipeline to the end of its source (or a signal); return the summary dict.

    ``reload`` re-reads the settings on SIGHUP or an MQTT reload command; ``health_addr`` serves
    /healthz and /metrics. ``hooks``: extra listeners (annotated video, pacing, snapshots). ``config_path``:
    the settings' YAML, which the dashboard's editor may change (``cmd/config``). ``show_progress``:
    the progress bar on a terminal (off when a caller draws its own, as `edge demo` does).
    """
    previous = _current_handlers()
    early = _hold_sighup()
    # /healthz may call a camera reconnect (the capture watchdog) a stall only after 10 s more.
    service = ServiceHooks.create(health_addr=health_addr, stall_s=settings.capture.watchdog_s + 10.0)
    progress = Progress(settings.max_frames)
    progress.enabled = progress.enabled and show_progress
    try:
        load = service.notifier.wrap_reload(reload) if reload is not None else None
        pipeline = build_pipeline(settings, hooks=[*hooks, *service.hooks], reload=load, config_path=config_path)
        _install_stop_signals(pipeline)
        install_sighup(pipeline, service.notifier)
        if early.is_set():
            log.info("SIGHUP arrived during start-up: reloading now")
            service.notifier.reloading()
            pipeline.request({"cmd": "reload"})
        manifest = pipeline.detector.manifest
        log.info(
            "counting on %s with %s (%s, %s)", settings.source, settings.model, manifest.runtime, manifest.precision
        )
        summary = pipeline.run(progress=progress)
    finally:
        progress.close()
        service.close()
        _restore_handlers(previous)  # the caller (edge demo --keep-serving) gets Ctrl-C back
    result = summary.to_json()
    if settings.outputs.summary is not None:
        settings.outputs.summary.parent.mkdir(parents=True, exist_ok=True)
        settings.outputs.summary.write_text(json.dumps(result, indent=2) + "\n")
    log.info("%d frames in %.1f s (%.1f fps)", summary.frames, summary.seconds, summary.fps)
    if summary.rate is not None:
        log.info(
            "%s: the detector saw %d of %d frames, optical flow carried the rest",
            summary.rate,
            summary.detected_frames,
            summary.frames,
        )
    return result


_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _current_handlers() -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.getsignal(s) for s in _SIGNALS}


def _restore_handlers(handlers: dict[int, Any]) -> None:
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


def _hold_sighup() -> threading.Event:
    """Until the pipeline exists, SIGHUP only notes that a reload was asked for (its default action
    would kill a service that systemd reloads while it is still loading its model)."""
    seen = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGHUP, lambda _signum, _frame: seen.set())
    return seen


def _install_stop_signals(pipeline: Pipeline) -> None:
    """SIGINT/SIGTERM finish the current frame, then flush sinks and write the summary."""
    if threading.current_thread() is not threading.main_thread():
        return

    def _handler(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping after this frame", signal.Signals(signum).name)
        pipeline.stop()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
