"""One call that makes a pipeline a good systemd citizen: sd_notify observer, optional health/metrics
server, SIGHUP -> reload (RELOADING=1 ... READY=1). ``run_counting`` calls it; so does the test
harness.

    hooks = attach_service(pipeline, health_addr="127.0.0.1:9108", reload=lambda: load_config(path))
    try:
        pipeline.run()
    finally:
        hooks.close()
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Callable, Mapping

from edgetally.service.health import HealthServer, MetricsObserver
from edgetally.service.sdnotify import SystemdNotifier

if TYPE_CHECKING:
    from edgetally.config.models import RunSettings
    from edgetally.pipeline import Pipeline

log = logging.getLogger(__name__)

HEALTH_ADDR_ENV = "EDGE_HEALTH_ADDR"


@dataclass
class ServiceHooks:
    notifier: SystemdNotifier
    metrics: MetricsObserver | None = None
    server: HealthServer | None = None

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        self.notifier.notify.close()


def attach_service(pipeline: Pipeline, *, health_addr: str | None = None,
                   reload: Callable[[], RunSettings] | None = None, stall_s: float | None = None,
                   env: Mapping[str, str] | None = None) -> ServiceHooks:
    """Add the observers, start the health server (when ``health_addr`` or $EDGE_HEALTH_ADDR is
    set) and install SIGHUP (main thread only). ``stall_s``: /healthz turns 503 after this long
    without a frame (default: the capture watchdog + 10 s, so a camera reconnect is not a failure)."""
    env = os.environ if env is None else env
    notifier = SystemdNotifier(env=env)
    pipeline.observers.append(notifier)
    hooks = ServiceHooks(notifier)
    addr = health_addr or env.get(HEALTH_ADDR_ENV)
    if addr:
        stall = stall_s if stall_s is not None else pipeline.settings.capture.watchdog_s + 10.0
        hooks.metrics = MetricsObserver(stall_s=stall)
        hooks.server = HealthServer(hooks.metrics, addr).start()
        pipeline.observers.append(hooks.metrics)
    if reload is not None:
        pipeline.reload_settings = notifier.wrap_reload(reload)
    install_sighup(pipeline, notifier if reload is not None else None)
    return hooks


def install_sighup(pipeline: Pipeline, notifier: SystemdNotifier | None) -> None:
    """SIGHUP (``systemctl reload``) re-reads the config in the frame loop. Without a config file
    there is nothing to re-read: log and carry on (SIGHUP's default action would kill us)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def _handler(signum: int, _frame: FrameType | None) -> None:
        if notifier is None:
            log.warning("SIGHUP: nothing to reload (started without --config)")
            return
        log.info("SIGHUP: reloading the config")
        notifier.reloading()
        pipeline.request({"cmd": "reload"})

    signal.signal(signal.SIGHUP, _handler)
