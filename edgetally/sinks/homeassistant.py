"""Home Assistant MQTT *device* discovery: one retained message describes the whole device.

``<ha_prefix>/device/<device_id>/config`` (HA 2024.11+) carries a ``sensor`` per
counter/class/direction (``state_class: total_increasing``, so a reset to 0 reads as a meter
reset, not a negative count) and diagnostic sensors read from the stats topic. It is re-sent on
every (re)connect and whenever HA publishes ``online`` on ``<ha_prefix>/status``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from edgetally.sinks.outbox import CounterKey
from edgetally.sinks.topics import OFFLINE, ONLINE, Topics, sanitize_segment

# (stats key, name, unit, device_class)
DIAGNOSTICS: tuple[tuple[str, str, str | None, str | None], ...] = (
    ("fps", "FPS", "fps", None),
    ("infer_ms_p50", "Inference time p50", "ms", "duration"),
    ("outbox_depth", "Outbox depth", "events", None),
    ("outbox_dropped", "Outbox dropped events", "events", None),
    ("dropped_frames", "Dropped frames", "frames", None),
    ("camera_age_s", "Camera frame age", "s", "duration"),
)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("edgetally")
    except PackageNotFoundError:
        return "0"


def counter_component(topics: Topics, key: CounterKey) -> tuple[str, dict[str, Any]]:
    counter, class_name, direction = key
    uid = "_".join(sanitize_segment(s) for s in (topics.device_id, counter, class_name, direction))
    return uid, {
        "p": "sensor",
        "name": f"{counter} {class_name} {direction}",
        "unique_id": uid,
        "object_id": uid,
        "state_topic": topics.counter(counter, class_name, direction),
        "state_class": "total_increasing",
        "unit_of_measurement": class_name,
        "icon": "mdi:counter",
    }


def diagnostic_component(
    topics: Topics, key: str, name: str, unit: str | None, dclass: str | None
) -> tuple[str, dict[str, Any]]:
    uid = f"{topics.device_id}_{key}"
    comp: dict[str, Any] = {
        "p": "sensor",
        "name": name,
        "unique_id": uid,
        "object_id": uid,
        "state_topic": topics.stats,
        "value_template": f"{{{{ value_json.{key} }}}}",
        "state_class": "measurement",
        "entity_category": "diagnostic",
    }
    if unit:
        comp["unit_of_measurement"] = unit
    if dclass:
        comp["device_class"] = dclass
    return uid, comp


def discovery_payload(topics: Topics, keys: Iterable[CounterKey], model: str = "edge counter") -> dict[str, Any]:
    """The device config. ``keys``: every counter/class/direction to expose (sorted for stable bytes)."""
    components: dict[str, Any] = {}
    for key in sorted(set(keys)):
        uid, comp = counter_component(topics, key)
        components[uid] = comp
    for spec in DIAGNOSTICS:
        uid, comp = diagnostic_component(topics, *spec)
        components[uid] = comp
    sw = _version()
    return {
        "dev": {
            "ids": [f"edgetally_{topics.device_id}"],
            "name": topics.device_id,
            "mf": "edgetally",
            "mdl": model,
            "sw": sw,
        },
        "o": {"name": "edgetally", "sw": sw},
        "cmps": components,
        "availability_topic": topics.availability,
        # "stopped" (clean shutdown) shows as unavailable too.
        "availability_template": f"{{{{ '{ONLINE}' if value == '{ONLINE}' else '{OFFLINE}' }}}}",
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "qos": 1,
    }
