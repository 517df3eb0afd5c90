"""Where counts go. Each sink is a ``edgetally.hooks.Sink`` in its own module with a
``from_settings(settings) -> Sink | None``, listed once in ``edgetally.build.SINK_MODULES``:

- ``jsonl``: count events as JSON lines (and the per-frame detections hook);
- ``mqtt``: a durable SQLite outbox -> paho-mqtt (QoS 1) -> broker, Home Assistant discovery,
  commands (``topics`` owns the topic layout and payloads; ``outbox`` the on-disk queue).
"""
