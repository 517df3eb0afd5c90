"""MQTT sink benchmark against a local mosquitto (QoS 1, durable SQLite outbox).

    .venv/bin/python benchmarks/mqtt_bench.py [--events 5000] [--sync full|normal] [--batches 1,2,5,10]

Prints: sustained rate (events/s, sink -> all received by a subscriber) for each batch size (events
per sink call: 1 = ``event()`` per event, N = ``events()`` with a frame's N events, one commit
and one fsync per call), crossing -> subscriber latency p50/p99 at a paced 200 events/s, outbox
replay rate after an outage of --replay events (broker down while they are counted, then started).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from mqtt_support import (
    Mosquitto,
    Subscriber,
    feed,
    make_context,
    make_event,
    wait_until,
)

from edgetally.sinks.mqtt import MqttSettings, MqttSink

EVENTS = "edgetally/bench/events"


def _sink(url: str, tmp: Path, name: str, sync: str, **kw: object) -> tuple[MqttSink, object]:
    ctx = make_context("bench")
    sink = MqttSink(
        MqttSettings(
            url=url,
            outbox=tmp / f"{name}.sqlite",
            device_id="bench",
            outbox_sync=sync,
            homeassistant=False,
            reconnect_min_s=1,
            reconnect_max_s=1,
            **kw,
        )
    )
    sink.open(ctx)
    return sink, ctx


def sustained(broker: Mosquitto, tmp: Path, n: int, sync: str, batch: int = 1) -> dict[str, float]:
    sub = Subscriber(broker.port, EVENTS).start()
    sink, ctx = _sink(broker.url, tmp, f"sustained{batch}", sync)
    assert wait_until(lambda: sink.connected, 10)
    events = [make_event(i) for i in range(1, n + 1)]
    t0 = time.perf_counter()
    if batch == 1:
        feed(sink, ctx, events)
    else:
        for i in range(0, n, batch):
            sink.events([(ev, ctx.totals.add(ev)) for ev in events[i : i + batch]])
    t_commit = time.perf_counter() - t0
    assert wait_until(lambda: len(sub.on(EVENTS)) >= n, 120, 0.005)
    t_all = time.perf_counter() - t0
    sink.close()
    sub.stop()
    return {"events": n, "batch": batch, "commit_rate": round(n / t_commit), "end_to_end_rate": round(n / t_all)}


def latency(broker: Mosquitto, tmp: Path, n: int, rate: float, sync: str) -> dict[str, float]:
    sub = Subscriber(broker.port, EVENTS).start()
    sink, ctx = _sink(broker.url, tmp, "latency", sync)
    assert wait_until(lambda: sink.connected, 10)
    sent: dict[int, float] = {}
    for i in range(1, n + 1):
        sent[i] = time.time()
        feed(sink, ctx, [make_event(i)])
        time.sleep(max(0.0, sent[i] + 1.0 / rate - time.time()))
    assert wait_until(lambda: len(sub.on(EVENTS)) >= n, 30)
    sink.close()
    sub.stop()
    # receive times are stamped by TimedSubscriber as each message arrives
    return _latencies(sub, sent)


def _latencies(sub: Subscriber, sent: dict[int, float]) -> dict[str, float]:
    lat = np.array([(sub_t - sent[tid]) * 1000 for tid, sub_t in sub.arrivals.items()])  # type: ignore[attr-defined]
    return {
        "events": len(lat),
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(lat.max()),
    }


def replay(broker: Mosquitto, tmp: Path, n: int, sync: str) -> dict[str, float]:
    broker.stop()
    sink, ctx = _sink(broker.url, tmp, "replay", sync, outbox_max_events=max(n, 100_000))
    feed(sink, ctx, [make_event(i) for i in range(1, n + 1)])
    assert sink.outbox is not None and sink.outbox.depth == n
    broker.start()
    sub = Subscriber(broker.port, EVENTS).start()
    assert wait_until(lambda: sink.connected, 15, 0.001)
    t0 = time.perf_counter()
    assert wait_until(lambda: len(sub.on(EVENTS)) >= n and sink.outbox.depth == 0, 120, 0.005)
    dt = time.perf_counter() - t0
    seqs = {json.loads(p)["seq"] for p in sub.on(EVENTS)}
    sink.close()
    sub.stop()
    return {"events": n, "complete": float(seqs == set(range(1, n + 1))), "seconds": dt, "rate": n / dt}


class TimedSubscriber(Subscriber):
    def _on_message(self, client: object, userdata: object, msg: object) -> None:
        now = time.time()
        super()._on_message(client, userdata, msg)
        if not hasattr(self, "arrivals"):
            self.arrivals: dict[int, float] = {}
        self.arrivals.setdefault(json.loads(msg.payload)["track_id"], now)  # type: ignore[attr-defined]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--latency-events", type=int, default=1000)
    ap.add_argument("--replay", type=int, default=10_000)
    ap.add_argument("--sync", choices=["full", "normal"], default="full")
    ap.add_argument("--batches", default="1,2,5,10", help="events per sink call, comma-separated")
    args = ap.parse_args()
    global Subscriber
    Subscriber = TimedSubscriber
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        broker = Mosquitto(tmp / "broker").start()
        try:
            for batch in (int(b) for b in args.batches.split(",")):
                print("sustained", json.dumps(sustained(broker, tmp, args.events, args.sync, batch)))
            print("latency  ", json.dumps(latency(broker, tmp, args.latency_events, 200.0, args.sync)))
            print("replay   ", json.dumps(replay(broker, tmp, args.replay, args.sync)))
        finally:
            broker.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
