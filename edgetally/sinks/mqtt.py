"""MQTT sink: durable outbox -> paho-mqtt 2.x (QoS 1) -> broker. Never loses a count.

Threads: the frame loop calls ``event()``/``stats()``, which only commit to the SQLite outbox and
mark what changed (no network I/O). ONE publisher thread owns every publish of events, counters,
state and discovery, so ordering is simple: on each (re)connect it re-sends availability, state,
discovery and every retained counter (a broker restarted without persistence gets them all
back), then streams the event backlog in ``seq`` order with at most ``max_inflight`` unacked.
paho's network thread (``loop_start``) handles PUBACKs: it queues the mid, and the publisher maps
mid -> seq and deletes acknowledged rows in batches. paho keeps handed-over QoS 1 messages across
reconnects and re-sends them, so nothing is handed over twice within one process; after a crash
the outbox re-sends what was never acknowledged (same seq: consumers de-duplicate).

Other sinks publish through this one (never a second client): ``publish_durable(topic, payload)``
goes through the outbox like an event (interval rows, movements), ``set_retained(topic, payload)``
keeps a retained topic that is re-sent on every reconnect, and ``add_command(name, handler)`` routes
a validated ``cmd/<name>`` to its handler, which answers with ``answer()``.
"""

from __future__ import annotations

import collections
import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from edgetally.config.models import RunSettings
from edgetally.errors import ConfigError
from edgetally.hooks import RunContext, RunStats, Sink
from edgetally.sinks.commands import Refusals, parse_command
from edgetally.sinks.homeassistant import discovery_payload
from edgetally.sinks.mqtt_settings import MqttSettings, MqttUrl, parse_mqtt_url
from edgetally.sinks.outbox import CounterKey, Outbox
from edgetally.sinks.topics import (
    OFFLINE,
    ONLINE,
    STATES,
    STOPPED,
    Topics,
    counter_payload,
    encode,
    event_payload,
    result_payload,
    stats_payload,
)
from edgetally.structures import CountEvent

__all__ = ["MqttSettings", "MqttSink", "MqttUrl", "parse_mqtt_url"]

log = logging.getLogger(__name__)
_AUTH_REASONS = ("not authorized", "bad user name or password", "bad username or password")


def from_settings(settings: RunSettings, earlier: Sequence[Sink] = ()) -> MqttSink | None:
    """The sink for the run settings' ``mqtt:`` block (the device id defaults to the run's)."""
    if settings.mqtt is None:
        return None
    from pydantic import ValidationError

    block = {**settings.mqtt}
    block.setdefault("device_id", settings.device_id)
    try:
        return MqttSink(MqttSettings.model_validate(block))
    except ValidationError as exc:
        lines = [f"mqtt.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid MQTT settings:\n  " + "\n  ".join(lines)) from exc


class MqttSink(Sink):
    """The durable MQTT sink (plus ``set_state()`` for the device state topic)."""

    def __init__(self, settings: MqttSettings) -> None:
        self.settings = settings
        self.outbox: Outbox | None = None
        self.topics: Topics | None = None
        self._ctx: RunContext | None = None
        self._client: Any = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._acked_mids: collections.deque[int] = collections.deque()
        self._inflight: dict[int, int] = {}  # mid -> seq; publisher thread only
        self._inflight_msgs: dict[int, int] = {}  # mid -> outbox message id; publisher thread only
        self._last_handed = 0
        self._last_handed_msg = 0
        self._retained: dict[str, bytes] = {}
        self._retained_dirty: set[str] = set()
        self._handlers: dict[str, Callable[[dict[str, object], str | None], None]] = {}
        self._counters: dict[CounterKey, int] = {}
        self._dirty: set[CounterKey] = set()
        self._republish = False
        self._discovery_dirty = False
        self._state = "init"
        self._state_dirty = True
        self._stats: bytes | None = None
        self._camera_stale = False
        self._connected = False
        self.reconnects = 0
        self._last_fail_log = 0.0
        self._refusals = Refusals(log)

    # -- Sink protocol (frame-loop thread) -------------------------------------------------
    def open(self, context: RunContext) -> None:
        s = self.settings
        device = s.resolve_device_id(context.device_id)
        self.topics = Topics.build(s.prefix, device, s.homeassistant_prefix)
        self._ctx = context
        self.outbox = Outbox(s.resolve_outbox_path(device), s.outbox_max_events, s.outbox_sync, s.outbox_retry_s)
        self._counters = self.outbox.counters()
        _restore_totals(context, self._counters)
        self._client = self._make_client(device)
        broker = s.broker
        log.info(
            "MQTT: %s:%d%s as %s, topics %s/#, outbox %s (%d events waiting, next seq %d)",
            broker.host,
            broker.port,
            " (TLS)" if s.tls_enabled else "",
            self._client_id(device),
            self.topics.base,
            self.outbox.path,
            self.outbox.depth,
            self.outbox.next_seq,
        )
        self._client.connect_async(broker.host, broker.port, keepalive=s.keepalive_s)
        self._client.loop_start()  # retries the first connection too, with the backoff below
        self._thread = threading.Thread(target=self._publisher, name="mqtt-publisher", daemon=True)
        self._thread.start()

    def event(self, event: CountEvent, cumulative: int) -> None:
        """Commit one event to the outbox (durable when this returns, see ``outbox_problem``)."""
        self.events([(event, cumulative)])

    def events(self, batch: Sequence[tuple[CountEvent, int]]) -> None:
        """Commit a frame's events in one outbox transaction (one fsync for all of them): on disk
        when this returns, unless ``outbox_problem`` says the disk is failing (then in memory)."""
        assert self.outbox is not None, "open() first"
        if not batch:
            return
        keys = [(e.counter, e.class_name, e.direction) for e, _ in batch]
        self.outbox.append_many([(functools.partial(_event_bytes, e), k, n) for (e, n), k in zip(batch, keys)])
        with self._lock:
            for key, (_, cumulative) in zip(keys, batch):
                if key not in self._counters:
                    self._discovery_dirty = True
                self._counters[key] = cumulative
                self._dirty.add(key)
            self._update_state_locked()
        self._wake.set()

    def stats(self, stats: RunStats) -> None:
        assert self.outbox is not None, "open() first"
        box = self.outbox
        fields: dict[str, float | int] = {
            "frames": stats.frames,
            "fps": round(stats.fps, 2),
            "infer_ms_p50": round(stats.infer_ms_p50, 2),
            "dropped_frames": stats.dropped_frames,
            "camera_age_s": round(stats.camera_age_s, 2),
            "camera_reconnects": stats.reconnects,
            "outbox_depth": box.depth,
            "outbox_dropped": box.dropped,
            "outbox_messages": box.message_depth,
            "outbox_on_disk": int(box.on_disk),
            "outbox_memory_events": box.memory_depth,
            "mqtt_reconnects": self.reconnects,
            **stats.extra,
        }
        with self._lock:
            self._stats = encode(stats_payload(fields))
            self._camera_stale = stats.camera_age_s > self.settings.degraded_camera_age_s
            self._update_state_locked()
        self._wake.set()

    @property
    def outbox_problem(self) -> str | None:
        """None while every count is on disk; else why not (disk full, I/O error): counting and
        publishing go on from memory, retried every few seconds. Surface it (state, stats, metrics)."""
        return None if self.outbox is None else self.outbox.problem

    def _update_state_locked(self, started: bool = True) -> None:
        """ready, or degraded while the camera is stale or the outbox is off disk; ``init`` holds
        until the first event or stats (``started``); ``set_state("error")`` is never overridden."""
        if self._state not in ("init", "ready", "degraded") or (self._state == "init" and not started):
            return
        self._set_state_locked("degraded" if self._camera_stale or self.outbox_problem is not None else "ready")

    def close(self, final_state: str = "stopped") -> None:
        if self._client is None:
            return
        self._drain(self.settings.close_timeout_s)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._publish_final(final_state)
        self._client.disconnect()  # a clean DISCONNECT: the broker drops the last will
        self._client.loop_stop()
        self._client = None
        assert self.outbox is not None
        if self.outbox.depth:
            log.warning("MQTT: %d events not yet acknowledged stay in the outbox for the next start", self.outbox.depth)
        self.outbox.close()

    # -- extensions --------------------------------------------------------------------------
    def totals_changed(self) -> None:
        """Call on the frame-loop thread after changing ``RunContext.totals`` other than through
        ``event()`` (a reset): persists the totals and re-publishes every retained counter."""
        assert self._ctx is not None and self.outbox is not None, "open() first"
        new = _flatten(self._ctx.totals)
        with self._lock:
            for key in self._counters:
                new.setdefault(key, 0)  # a counter that vanished reads 0, not its old value
            self.outbox.set_counters(new)
            self._counters = new
            self._dirty.update(new)
            self._discovery_dirty = True
        self._wake.set()

    def publish_durable(self, topic: str, payload: bytes) -> None:
        """Through the outbox, QoS 1, not retained: on disk before it is sent, replayed after an outage."""
        assert self.outbox is not None, "open() first"
        self.outbox.enqueue(topic, payload)
        self._wake.set()

    def set_retained(self, topic: str, payload: bytes) -> None:
        """A retained topic this sink keeps current: published now and again on every reconnect."""
        with self._lock:
            if self._retained.get(topic) != payload:
                self._retained[topic] = payload
                self._retained_dirty.add(topic)
        self._wake.set()

    def add_command(self, name: str, handler: Callable[[dict[str, object], str | None], None]) -> None:
        """Route the validated ``cmd/<name>`` (see commands.py) to ``handler(command, request_id)`` on
        paho's network thread: it must return quickly and answer with ``answer()``."""
        self._handlers[name] = handler

    def answer(
        self, cmd: str, ok: bool, detail: str, request_id: str | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        """Publish a command's answer on ``cmd/result`` (QoS 1); ``extra`` adds keys (e.g. errors)."""
        if self._client is None or self.topics is None:
            return
        payload = {**result_payload(cmd, ok, detail, request_id), **(extra or {})}
        self._client.publish(self.topics.cmd_result, encode(payload), qos=1)

    def set_state(self, state: str) -> None:
        if state not in STATES:
            raise ValueError(f"state: expected one of {STATES}, got {state!r}")
        with self._lock:
            self._set_state_locked(state)
        self._wake.set()

    @property
    def connected(self) -> bool:
        return self._connected

    def problems(self) -> list[str]:
        # A frame loop that runs while the publisher thread is dead must not look healthy.
        thread = self._thread
        if thread is not None and thread.ident is not None and not thread.is_alive():
            return ["MqttSink worker stopped"]
        return []

    def metrics(self) -> dict[str, float]:
        if self.outbox is None:
            return {}
        box = self.outbox
        return {
            "outbox_depth": float(box.depth),
            "outbox_dropped": float(box.dropped),
            "outbox_on_disk": 1.0 if box.on_disk else 0.0,
            "outbox_memory_events": float(box.memory_depth),
            "mqtt_connected": 1.0 if self._connected else 0.0,
            "mqtt_reconnects": float(self.reconnects),
        }

    @property
    def context(self) -> RunContext:
        assert self._ctx is not None, "open() first"
        return self._ctx

    def _set_state_locked(self, state: str) -> None:
        if state != self._state:
            self._state, self._state_dirty = state, True

    # -- paho client and callbacks (paho network thread) --------------------------------------
    def _client_id(self, device: str) -> str:
        return self.settings.client_id or f"edgetally-{device}"

    def _make_client(self, device: str) -> Any:
        s = self.settings
        assert self.topics is not None
        client = s.new_client(self._client_id(device))
        client.will_set(self.topics.availability, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(
            min_delay=max(1, round(s.reconnect_min_s)), max_delay=max(1, round(s.reconnect_max_s))
        )
        client.max_inflight_messages_set(s.max_inflight + 50)  # + room for retained/state publishes
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        broker = self.settings.broker
        if reason.is_failure:
            hint = ""
            if str(reason).lower() in _AUTH_REASONS:
                hint = " (check mqtt username and password_file/password_credential)"
            log.error(
                "MQTT broker %s:%d refused the connection: %s%s; retrying with backoff",
                broker.host,
                broker.port,
                reason,
                hint,
            )
            return
        assert self.topics is not None
        log.info(
            "MQTT connected to %s:%d (%d events in the outbox)",
            broker.host,
            broker.port,
            self.outbox.depth if self.outbox else 0,
        )
        client.subscribe(self.topics.cmd_wildcard, qos=1)
        if self.settings.homeassistant:
            client.subscribe(self.topics.ha_status, qos=1)
        with self._lock:
            self._connected = True
            self._republish = True
        self._wake.set()

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        now = time.monotonic()
        if now - self._last_fail_log >= 60.0 or self._last_fail_log == 0.0:
            self._last_fail_log = now
            broker = self.settings.broker
            depth = self.outbox.depth if self.outbox else 0
            log.warning(
                "MQTT broker %s:%d unreachable; retrying with backoff (up to %.0f s); %d events kept in the outbox",
                broker.host,
                broker.port,
                self.settings.reconnect_max_s,
                depth,
            )

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        was = self._connected
        self._connected = False
        if was:
            self.reconnects += 1
            if not self._stop.is_set():
                log.warning("MQTT connection lost (%s); reconnecting with backoff, events kept in the outbox", reason)

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        # Runs under paho's message mutex: never take our locks here (deadlock), just hand over.
        self._acked_mids.append(mid)
        self._wake.set()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            self._handle_message(msg.topic, bytes(msg.payload))
        except Exception:  # a bad message must never take the runner down
            log.exception("MQTT: error while handling a message on %r", getattr(msg, "topic", "?"))

    def _handle_message(self, topic: str, payload: bytes) -> None:
        assert self.topics is not None and self._ctx is not None
        if topic == self.topics.ha_status:
            if payload.strip().lower() == b"online":
                log.info("Home Assistant came online: re-sending discovery and counters")
                with self._lock:
                    self._republish = True
                self._wake.set()
            return
        name = self.topics.command_name(topic)
        if name is None or name == "result":
            return
        known = {c.name for c in self._ctx.counters} | {k[0] for k in self._counters}
        parsed = parse_command(name, payload, known)
        if parsed.command is None:
            if self._refusals.refused(name, parsed.error or "invalid"):
                self.answer(name[:64], False, parsed.error or "invalid", parsed.request_id)
            return
        if name in self._handlers:
            self._handlers[name](parsed.command, parsed.request_id)
            return
        if name == "snapshot":
            with self._lock:
                self._dirty.update(self._counters)
            self._wake.set()
            detail = "counters re-published"
        else:
            self._ctx.commands(parsed.command)
            detail = "queued for the runner"
        log.info("MQTT command %s accepted: %s", parsed.command, detail)
        self.answer(name, True, detail, parsed.request_id)

    # -- publisher thread ----------------------------------------------------------------------
    def _publisher(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=0.2)
            self._wake.clear()
            try:
                self._publish_round()
            except Exception:
                log.exception("MQTT publisher: unexpected error (will retry)")
                time.sleep(0.5)
        self._process_acks()

    def _publish_round(self) -> None:
        self._process_acks()
        self._check_outbox()
        if not self._connected:
            return
        self._publish_meta()
        self._publish_events()
        self._publish_messages()

    def _check_outbox(self) -> None:
        """While the disk fails, retry it (every few seconds) and keep the state up to date."""
        assert self.outbox is not None
        if self.outbox.problem is not None:
            self.outbox.retry()
        with self._lock:
            before = self._state
            self._update_state_locked(started=False)
            changed = self._state != before
        if changed:
            log.warning("MQTT state %s: %s", self._state, self.outbox.problem or "outbox on disk again")

    def _process_acks(self) -> None:
        seqs, ids = [], []
        while self._acked_mids:
            mid = self._acked_mids.popleft()
            seq = self._inflight.pop(mid, None)
            if seq is not None:
                seqs.append(seq)
            msg_id = self._inflight_msgs.pop(mid, None)
            if msg_id is not None:
                ids.append(msg_id)
        if self.outbox is not None:
            if seqs:
                self.outbox.ack(seqs)
            if ids:
                self.outbox.ack_messages(ids)

    def _publish_meta(self) -> None:
        assert self.topics is not None
        with self._lock:
            republish, self._republish = self._republish, False
            if republish:
                self._dirty.update(self._counters)
            state = self._state if (republish or self._state_dirty) else None
            discovery = republish or self._discovery_dirty
            self._state_dirty = self._discovery_dirty = False
            counters = {k: self._counters[k] for k in self._dirty}
            self._dirty.clear()
            extra = {t: self._retained[t] for t in (self._retained if republish else self._retained_dirty)}
            self._retained_dirty.clear()
            stats, self._stats = self._stats, None
        pub = self._client.publish
        if republish:
            pub(self.topics.availability, ONLINE, qos=1, retain=True)
        if state is not None:
            pub(self.topics.state, state, qos=1, retain=True)
        if discovery and self.settings.homeassistant:
            pub(
                self.topics.ha_discovery,
                encode(discovery_payload(self.topics, self._discovery_keys())),
                qos=1,
                retain=True,
            )
        for (counter, cls, direction), value in sorted(counters.items()):
            pub(self.topics.counter(counter, cls, direction), counter_payload(value), qos=1, retain=True)
        for topic, payload in sorted(extra.items()):
            pub(topic, payload, qos=1, retain=True)
        if stats is not None:
            pub(self.topics.stats, stats, qos=0, retain=True)

    def _discovery_keys(self) -> set[CounterKey]:
        assert self._ctx is not None
        keys = {(c.name, cls, d) for c in self._ctx.counters for cls in self._ctx.classes for d in c.directions}
        with self._lock:
            return keys | set(self._counters)

    def _publish_events(self) -> None:
        assert self.outbox is not None and self.topics is not None
        room = self.settings.max_inflight - len(self._inflight)
        while room > 0 and self._connected:
            batch = self.outbox.pending(self._last_handed, min(room, 500))
            if not batch:
                return
            for entry in batch:
                info = self._client.publish(self.topics.events, entry.payload, qos=self.settings.qos)
                self._inflight[info.mid] = entry.seq
                self._last_handed = entry.seq
            room -= len(batch)

    def _publish_messages(self) -> None:
        """The outbox's other messages (interval rows, movements), in id order, after the events."""
        assert self.outbox is not None
        room = self.settings.max_inflight - len(self._inflight) - len(self._inflight_msgs)
        while room > 0 and self._connected:
            batch = self.outbox.pending_messages(self._last_handed_msg, min(room, 500))
            if not batch:
                return
            for msg in batch:
                info = self._client.publish(msg.topic, msg.payload, qos=1)
                self._inflight_msgs[info.mid] = msg.id
                self._last_handed_msg = msg.id
            room -= len(batch)

    # -- shutdown --------------------------------------------------------------------------------
    def _drain(self, timeout: float) -> None:
        """Give the backlog up to ``timeout`` seconds to reach the broker before stopping, waiting
        for a reconnect too (what is still unsent after that stays in the outbox for the next start)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.outbox is not None:
            if (
                self.outbox.depth == 0
                and self.outbox.message_depth == 0
                and not self._dirty
                and not self._retained_dirty
                and not self._inflight
                and not self._inflight_msgs
            ):
                return
            self._wake.set()
            time.sleep(0.02)

    def _publish_final(self, final_state: str) -> None:
        assert self.topics is not None
        if not self._connected:
            return
        self._publish_meta()
        availability = STOPPED if final_state == STOPPED else OFFLINE
        infos = []
        if final_state in STATES:
            infos.append(self._client.publish(self.topics.state, final_state, qos=1, retain=True))
        infos.append(self._client.publish(self.topics.availability, availability, qos=1, retain=True))
        for info in infos:
            try:
                info.wait_for_publish(timeout=2.0)
            except (RuntimeError, ValueError):
                pass  # connection dropped meanwhile: the last will says "offline"


def _event_bytes(event: CountEvent, seq: int) -> bytes:
    return encode(event_payload(seq, event))


def _flatten(totals: Any) -> dict[CounterKey, int]:
    return {(c, k, d): int(n) for c, per in totals.values.items() for k, dirs in per.items() for d, n in dirs.items()}


def _restore_totals(context: RunContext, persisted: dict[CounterKey, int]) -> None:
    """Fill the pipeline's totals from the outbox before the first frame (max wins)."""
    for (counter, cls, direction), n in persisted.items():
        per = context.totals.values.setdefault(counter, {}).setdefault(cls, {})
        per[direction] = max(per.get(direction, 0), n)
    if persisted:
        log.info("MQTT: restored %d counters from the outbox (total %d)", len(persisted), sum(persisted.values()))
