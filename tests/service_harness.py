"""What `edge run --config FILE --health-addr ADDR` does once the service hooks are wired into
run_counting: settings -> sinks -> pipeline -> attach_service -> run. Used by the service tests as
a subprocess (signals need a real main thread).  python service_harness.py CONFIG [HEALTH_ADDR [STALL_S]]"""

from __future__ import annotations

import json
import logging
import signal
import sys


def main(config: str, health_addr: str | None, stall_s: float | None) -> int:
    from edgetally.config import load_config
    from edgetally.pipeline import Pipeline
    from edgetally.runner import build_sinks
    from edgetally.service.attach import attach_service

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    settings = load_config(config)
    pipeline = Pipeline(settings, build_sinks(settings))
    hooks = attach_service(pipeline, health_addr=health_addr, reload=lambda: load_config(config), stall_s=stall_s)
    if hooks.server is not None:
        print(json.dumps({"health_port": hooks.server.address[1]}), flush=True)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: pipeline.stop())
    try:
        summary = pipeline.run()
    finally:
        hooks.close()
    print(json.dumps(summary.to_json()), flush=True)
    return 0


if __name__ == "__main__":
    args = sys.argv[1:] + [None, None]
    sys.exit(main(args[0], args[1], float(args[2]) if args[2] else None))
