"""The collector: MQTT 5 in, validated batches out to the database (or the spool), acks last.

Threads: paho's network thread parses and validates each message (``messages.parse_message``)
and queues it; ONE writer thread takes batches (up to ``batch_max`` or ``batch_wait_s``), writes
them to the store, or to the spool while the database is away, and only then acknowledges them
to the broker (``manual_ack``). So a message is always in exactly one of: the broker's session,
this process's queue (unacknowledged: the broker re-sends it if we die), the spool, the
database. The session is persistent (``clean_start=False`` + session expiry): what the broker
queues while the collector restarts is delivered when it is back. Refused messages are
acknowledged (a broken payload must not come back forever), counted and logged.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgetally.collect.messages import Record, Rejected, parse_message
from edgetally.collect.metrics import CollectMetrics
from edgetally.collect.settings import CollectSettings
from edgetally.collect.spool import Spool
from edgetally.collect.store import (
    GapReport,
    Store,
    StoreUnavailable,
    WriteResult,
    open_store,
)

log = logging.getLogger(__name__)

_REJECT_LOG_EVERY_S = 10.0
_REPLAY_BUDGET_S = 1.0
_DB_WARN_EVERY_S = 60.0


@dataclass(frozen=True)
class _Item:
    topic: str
    payload: bytes
    received_at: float
    record: Record
    mid: int
    qos: int
    epoch: int  # which connection delivered it: a PUBACK only makes sense on that connection


class Collector:
    def __init__(
        self,
        settings: CollectSettings,
        store: Store | None = None,
        spool: Spool | None = None,
        metrics: CollectMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._prefix = settings.prefix  # computed once: it is read for every message
        self.store = store or open_store(settings.resolved_db_url())
        self.spool = spool or Spool(settings.resolved_spool(), settings.spool_max_messages)
        self.metrics = metrics or CollectMetrics()
        self.clock = clock
        self._queue: collections.deque[_Item] = collections.deque()
        self._ready = threading.Condition()
        self._stopping = threading.Event()
        self._client: Any = None
        self._writer: threading.Thread | None = None
        self._epoch = 0
        self.connected = False
        self.db_up = False
        self._db_next_try = 0.0
        self._db_backoff = 1.0
        self._last_reject_log: dict[str, float] = {}
        self._holding = False  # messages we can neither store nor spool: acknowledgements stopped
        self._last_db_warning = -1e9
        self._next_gap_check = 0.0
        self._next_log = 0.0

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> Collector:
        s = self.settings
        broker = s.mqtt.broker  # not the URL: it may hold a password
        log.info(
            "collect: mqtt %s:%d -> %s (client id %s, %s, spool %s)",
            broker.host,
            broker.port,
            self.store.description,
            s.resolved_client_id(),
            f"shared group {s.share_group}" if s.share_group else "no shared subscription",
            self.spool.path,
        )
        self._try_store(self.clock())
        self._client = self._make_client()
        self._writer = threading.Thread(target=self._write_loop, name="collect-writer", daemon=True)
        self._writer.start()
        self._connect()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Store (or spool) what is queued, acknowledge it, then disconnect: the session stays."""
        self._stopping.set()
        with self._ready:
            self._ready.notify_all()
        if self._writer is not None:
            self._writer.join(timeout)
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None
        self.store.close()
        self.spool.close()
        log.info(
            "collect: stopped (%d events stored, %d refused)",
            self.metrics.total("stored_total", "events"),
            self.metrics.total("rejected_total"),
        )

    @property
    def writer_alive(self) -> bool:
        return self._writer is not None and self._writer.is_alive()

    def health(self) -> str | None:
        if not self.writer_alive:
            return "writer thread stopped"
        if not self.connected:
            return "not connected to the MQTT broker"
        if self._holding:
            return "database unreachable and spool full: not acknowledging messages"
        return None

    def queue_depth(self) -> int:
        return len(self._queue)

    # -- MQTT (paho network thread) ---------------------------------------------------------------
    def _make_client(self) -> Any:
        import paho.mqtt.client as mqtt

        s = self.settings
        client = s.mqtt.new_client(s.resolved_client_id(), protocol=mqtt.MQTTv5, manual_ack=True)
        client.reconnect_delay_set(
            min_delay=max(1, round(s.mqtt.reconnect_min_s)), max_delay=max(1, round(s.mqtt.reconnect_max_s))
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _connect(self) -> None:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.settings.session_expiry_s
        props.ReceiveMaximum = self.settings.receive_maximum
        broker = self.settings.mqtt.broker
        self._client.connect_async(
            broker.host, broker.port, keepalive=self.settings.mqtt.keepalive_s, clean_start=False, properties=props
        )
        self._client.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        broker = self.settings.mqtt.broker
        if reason.is_failure:
            log.error("MQTT broker %s:%d refused the connection: %s; retrying", broker.host, broker.port, reason)
            return
        self._epoch += 1
        self.connected = True
        self.metrics.set("mqtt_connected", 1)
        topics = self.settings.subscriptions()
        client.subscribe([(t, 1) for t in topics])
        log.info(
            "MQTT connected to %s:%d (%s session); subscribed to %s",
            broker.host,
            broker.port,
            "resumed" if flags.session_present else "new",
            ", ".join(topics),
        )

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if self.connected:
            self.metrics.inc("mqtt_reconnects_total")
        self.connected = False
        self.metrics.set("mqtt_connected", 0)
        if not self._stopping.is_set():
            log.warning("MQTT connection lost (%s); reconnecting, the broker keeps our session", reason)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            self._accept(msg.topic, bytes(msg.payload), int(msg.mid), int(msg.qos))
        except Exception:  # a message must never take the network thread down
            log.exception("collect: error while handling a message on %r", getattr(msg, "topic", "?")[:200])
            self._ack_now(int(msg.mid), int(msg.qos))

    def _accept(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        now = self.clock()
        parsed = parse_message(self._prefix, topic, payload, now, self.settings.max_payload_bytes)
        if parsed is None:
            self.metrics.inc("ignored_total")
            self._ack_now(mid, qos)
        elif isinstance(parsed, Rejected):
            self._refused(topic, parsed.reason, parsed.detail)
            self._ack_now(mid, qos)
        else:
            self.metrics.inc("messages_total", label=topic.rsplit("/", 1)[-1])
            self._queue.append(_Item(topic, payload, now, parsed, mid, qos, self._epoch))  # deque: thread-safe
            if len(self._queue) >= self.settings.batch_max:  # else the writer takes it when its linger ends
                with self._ready:
                    self._ready.notify()

    def _ack_now(self, mid: int, qos: int) -> None:
        if qos and self._client is not None:
            self._client.ack(mid, qos)

    def _refused(self, topic: str, reason: str, detail: str) -> None:
        self.metrics.inc("rejected_total", label=reason)
        now = time.monotonic()
        if now - self._last_reject_log.get(reason, -1e9) >= _REJECT_LOG_EVERY_S:
            self._last_reject_log[reason] = now
            log.warning(
                "collect: refused a message on %r (%s): %s [%d refused for this reason so far]",
                topic[:120],
                reason,
                detail,
                self.metrics.total("rejected_total", reason),
            )

    # -- writer thread -------------------------------------------------------------------------------
    def _write_loop(self) -> None:
        while True:
            items = self._take()
            now = self.clock()
            try:
                self._try_store(now)
                if self.db_up and self.spool.depth:
                    self._replay()
                if items:
                    self._handle(items)
                self._housekeeping(now)
            except Exception:
                log.exception("collect: writer error (retrying in 1 s)")
                self._hold(items)
            if self._stopping.is_set() and not self._queue:
                return

    def _take(self) -> list[_Item]:
        s = self.settings
        deadline = time.monotonic() + s.batch_wait_s
        with self._ready:
            while len(self._queue) < s.batch_max and not self._stopping.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._ready.wait(left)
            n = min(len(self._queue), s.batch_max)
            return [self._queue.popleft() for _ in range(n)]

    def _requeue(self, items: list[_Item]) -> None:
        with self._ready:
            self._queue.extendleft(reversed(items))

    def _handle(self, items: list[_Item]) -> None:
        if self.db_up and not self.spool.depth:
            try:
                self._account(self._write([i.record for i in items]))
                self._ack(items)
                self._holding = False
                return
            except StoreUnavailable as exc:
                self._lost_db(exc)
        fits, rest = items[: self.spool.room()], items[self.spool.room() :]
        if fits:
            self.spool.append([(i.topic, i.payload, i.received_at) for i in fits])
            self.metrics.inc("spooled_total", len(fits))
            self._ack(fits)
        if not rest:
            self._holding = False
            return
        if not self._holding:
            log.error(
                "collect: spool full (%d messages) and database away: not acknowledging; the broker "
                "keeps the rest in our session",
                self.spool.depth,
            )
        self._holding = True
        self._hold(rest)

    def _hold(self, items: list[_Item]) -> None:
        """Keep unacknowledged items for the next try in 1 s; when stopping, let them go: the broker
        still has them in our session and re-sends them to the next start."""
        if items and not self._stopping.is_set():
            self._requeue(items)
            self._stopping.wait(1.0)

    def _ack(self, items: list[_Item]) -> None:
        epoch = self._epoch
        for item in items:
            if item.qos and item.epoch == epoch and self._client is not None:
                self._client.ack(item.mid, item.qos)

    def _write(self, records: list[Record]) -> WriteResult:
        """One batch. If the database refuses a value in it (not an outage, not a bug), store record
        by record so the one bad row is refused (``db_error``) and never stalls the stream. Any
        other error propagates: the batch stays unacknowledged and is retried."""
        try:
            return self.store.write(records, self.clock())
        except Exception as exc:
            if not self.store.is_data_error(exc):
                raise
            log.warning(
                "collect: the database refused a value in a batch of %d (%s); storing one by one", len(records), exc
            )
        result = WriteResult()
        for rec in records:
            try:
                result.merge(self.store.write([rec], self.clock()))
            except Exception as exc:
                if not self.store.is_data_error(exc):
                    raise
                result.refused.append((rec, "db_error", str(exc)[:200]))
        return result

    def _account(self, result: WriteResult) -> None:
        for kind, n in result.inserted.items():
            if n:
                self.metrics.inc("stored_total", n, label=kind)
        if result.duplicates:
            self.metrics.inc("duplicates_total", result.duplicates)
        for rec, reason, detail in result.refused:
            self._refused(f"{self._prefix}/{rec.device_id}", reason, detail)
        self.metrics.add_lags(result.lags_s)

    # -- database availability and the spool ---------------------------------------------------------
    def _try_store(self, now: float) -> None:
        if self.db_up or now < self._db_next_try:
            return
        try:
            self.store.open()
        except StoreUnavailable as exc:
            self._db_next_try = now + self._db_backoff
            self._db_backoff = min(self._db_backoff * 2, self.settings.db_retry_max_s)
            if time.monotonic() - self._last_db_warning >= _DB_WARN_EVERY_S:
                self._last_db_warning = time.monotonic()
                log.warning(
                    "collect: database %s unreachable (%s); spooling to %s, retrying every %.0f s at most",
                    self.store.description,
                    exc,
                    self.spool.path,
                    self.settings.db_retry_max_s,
                )
            return
        self.db_up, self._db_backoff = True, 1.0
        self.metrics.set("db_up", 1)
        log.info(
            "collect: database %s ready%s",
            self.store.description,
            f"; replaying {self.spool.depth} spooled messages" if self.spool.depth else "",
        )

    def _lost_db(self, exc: Exception) -> None:
        self.db_up = False
        self.metrics.set("db_up", 0)
        self.metrics.inc("db_errors_total")
        self._db_next_try = self.clock() + self._db_backoff
        log.warning("collect: database %s went away (%s); spooling, retrying", self.store.description, exc)
        self.store.close()

    def _replay(self) -> None:
        """Move spooled messages to the database, oldest first, for up to ~1 s per call."""
        deadline = time.monotonic() + _REPLAY_BUDGET_S
        while self.spool.depth and time.monotonic() < deadline:
            entries = self.spool.oldest(self.settings.batch_max)
            records: list[Record] = []
            for e in entries:
                parsed = parse_message(self._prefix, e.topic, e.payload, e.received_at, self.settings.max_payload_bytes)
                if isinstance(parsed, Rejected):
                    self._refused(e.topic, parsed.reason, parsed.detail)
                elif parsed is not None:
                    records.append(parsed)
            try:
                self._account(self._write(records))
            except StoreUnavailable as exc:
                self._lost_db(exc)
                return
            self.spool.remove_through(entries[-1].id)
        if not self.spool.depth:
            log.info("collect: spool replayed; back to live")

    def _housekeeping(self, now: float) -> None:
        self.metrics.set("spool_depth", self.spool.depth)
        self.metrics.set("queue_depth", len(self._queue))
        if self.db_up and now >= self._next_gap_check:
            self._next_gap_check = now + self.settings.gap_check_s
            try:
                self._report_gaps(self.store.check_gaps(now, self.settings.gap_grace_s))
            except StoreUnavailable as exc:
                self._lost_db(exc)
        if now >= self._next_log:
            self._next_log = now + self.settings.log_interval_s
            m = self.metrics
            log.info(
                "collect: %d events stored, %d duplicates, %d refused, spool %d, gaps %d (%d events missing)",
                m.total("stored_total", "events"),
                m.total("duplicates_total"),
                m.total("rejected_total"),
                self.spool.depth,
                m.total("seq_gaps_total"),
                m.gauges.get("missing_events", 0),
            )

    def _report_gaps(self, report: GapReport) -> None:
        for gap in report.new:
            self.metrics.inc("seq_gaps_total")
            log.warning(
                "collect: device %s: events seq %d..%d (%d) missing after %.0f s: lost or still on their "
                "way (see table seq_gaps; the device's stats show outbox_dropped)",
                gap.device_id,
                gap.first_seq,
                gap.last_seq,
                gap.size,
                self.settings.gap_grace_s,
            )
        for gap in report.filled:
            log.info("collect: device %s: gap seq %d..%d filled late", gap.device_id, gap.first_seq, gap.last_seq)
        self.metrics.set("missing_events", report.open_missing)
