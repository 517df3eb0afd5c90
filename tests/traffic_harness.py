"""What `edge run --config FILE` does once issue 16's parts are wired in (edgetally/service/traffic.py):
settings -> sinks -> pipeline -> attach_service (SIGHUP/MQTT reload) -> attach_traffic (interval
history, movements, cmd/config) -> snapshots -> run. The editor test runs it as a subprocess.

    python traffic_harness.py CONFIG [SPEED]      SPEED: play the source at N x real time (0 = flat out)
"""

from __future__ import annotations

import json
import logging
import signal
import sys


def main(config: str, speed: float) -> int:
    from edgetally.cli.demo import Pacer
    from edgetally.config import load_config
    from edgetally.pipeline import Pipeline
    from edgetally.runner import build_sinks
    from edgetally.service.attach import attach_service
    from edgetally.service.traffic import attach_traffic
    from edgetally.sinks.mqtt_settings import MqttSettings
    from edgetally.snapshots import SnapshotPublisher

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    settings = load_config(config)
    pipeline = Pipeline(settings, build_sinks(settings))
    hooks = attach_service(pipeline, reload=lambda: load_config(config))
    attach_traffic(pipeline, config_path=config)
    if settings.mqtt is not None:
        block = {**settings.mqtt, "device_id": settings.mqtt.get("device_id", settings.device_id)}
        snapshots = SnapshotPublisher(MqttSettings.model_validate(block), interval_s=0.5)
        snapshots.attach(pipeline)
        pipeline.observers.append(snapshots)
    if speed > 0:
        pipeline.observers.append(Pacer(speed))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: pipeline.stop())
    try:
        summary = pipeline.run()
    finally:
        hooks.close()
    print(json.dumps(summary.to_json()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 0.0))
