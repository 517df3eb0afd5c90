"""What makes a run a good systemd citizen: the sd_notify hook, optional /healthz + /metrics, and
SIGHUP -> reload (RELOADING=1 ... READY=1). ``run_counting`` uses it; so does the test harness.

    service = ServiceHooks.create(health_addr="127.0.0.1:9108", stall_s=30.0)
    pipeline = build_pipeline(settings, hooks=service.hooks, reload=service.notifier.wrap_reload(load))
    install_sighup(pipeline, service.notifier)
    try:
        pipeline.run()
    finally:
        service.close()
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

from edgetally.hooks import Hook
from edgetally.service.health import HealthServer, MetricsHook
from edgetally.service.sdnotify import SystemdNotifier

if TYPE_CHECKING:
    from edgetally.pipeline import Pipeline

log = logging.getLogger(__name__)

HEALTH_ADDR_ENV = "EDGE_HEALTH_ADDR"


@dataclass
class ServiceHooks:
    notifier: SystemdNotifier
    metrics: MetricsHook | None = None
    server: HealthServer | None = None

    @classmethod
    def create(
        cls, *, health_addr: str | None = None, stall_s: float = 30.0, env: Mapping[str, str] | None = None
    ) -> ServiceHooks:
        """The sd_notify hook, plus the health server when ``health_addr`` or $EDGE_HEALTH_ADDR is set.
        ``stall_s``: /healthz turns 503 after this long without a frame."""
        env = os.environ if env is None else env
        service = cls(SystemdNotifier(env=env))
        addr = health_addr or env.get(HEALTH_ADDR_ENV)
        if addr:
            service.metrics = MetricsHook(stall_s=stall_s)
            service.server = HealthServer(service.metrics, addr).start()
        return service

    @property
    def hooks(self) -> list[Hook]:
        return [self.notifier] + ([self.metrics] if self.metrics is not None else [])

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        self.notifier.notify.close()


def install_sighup(pipeline: Pipeline, notifier: SystemdNotifier | None) -> None:
    """SIGHUP (``systemctl reload``) re-reads the config in the frame loop. Without a config file
    there is nothing to re-read: log and carry on (SIGHUP's default action would kill us)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def _handler(signum: int, _frame: FrameType | None) -> None:
        if notifier is None or pipeline.reload is None:
            log.warning("SIGHUP: nothing to reload (started without --config)")
            return
        log.info("SIGHUP: reloading the config")
        notifier.reloading()
        pipeline.request({"cmd": "reload"})

    signal.signal(signal.SIGHUP, _handler)
