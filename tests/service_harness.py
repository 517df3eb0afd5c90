"""What `edge run --config FILE --health-addr ADDR` does, with the health port printed first so a
test can find it: settings -> service hooks -> pipeline -> run. Used by the service tests as a
subprocess (signals need a real main thread).  python service_harness.py CONFIG [HEALTH_ADDR [STALL_S]]"""

from __future__ import annotations

import json
import logging
import signal
import sys


def main(config: str, health_addr: str | None, stall_s: float | None) -> int:
    from edgetally.build import build_pipeline
    from edgetally.config import load_config
    from edgetally.service.attach import ServiceHooks, install_sighup

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    settings = load_config(config)
    service = ServiceHooks.create(
        health_addr=health_addr, stall_s=stall_s if stall_s is not None else settings.capture.watchdog_s + 10.0
    )
    if service.server is not None:
        print(json.dumps({"health_port": service.server.address[1]}), flush=True)
    pipeline = build_pipeline(
        settings, hooks=service.hooks, reload=service.notifier.wrap_reload(lambda: load_config(config))
    )
    install_sighup(pipeline, service.notifier)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: pipeline.stop())
    try:
        summary = pipeline.run()
    finally:
        service.close()
    print(json.dumps(summary.to_json()), flush=True)
    return 0


if __name__ == "__main__":
    args = sys.argv[1:] + [None, None]
    sys.exit(main(args[0], args[1], float(args[2]) if args[2] else None))
