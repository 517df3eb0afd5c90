"""Fleet benchmark for `edge collect`: real mosquitto, real PostgreSQL (fsync on), devices that
publish through the runner's own MqttSink + outbox (threads in this process), and the collector
as the real `edge collect` command in its own process.

    .venv/bin/python -m benchmarks.fleet [--devices 200] [--rate 2] [--seconds 60] [--db postgres|sqlite]
                                         [--collectors 1] [--ingest-events 50000] [--ingest-repeats 2]
                                         [--skip-scenario] [--skip-ingest]

Scenario: N devices x R events/s for S seconds; the broker is restarted once (at S/4) and the
database stopped for 10 s (from S/2). Reports events lost, duplicates, sequence gaps, ingest
events/s and crossing -> row latency (all events, and those counted outside the outages).

Max ingest: the collectors' sessions exist but they are stopped; devices publish
``--ingest-events`` (the broker queues them), then one collector (then two sharing a
subscription) starts and drains them: rows / (last stored_at - first stored_at).
Writes benchmarks/results/fleet.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))
from collect_support import Device, query  # noqa: E402
from mqtt_support import Mosquitto, free_port, wait_until  # noqa: E402
from pg_support import Postgres, why_no_postgres  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "fleet.json"
DEVICES_PER_PROCESS = 50
STORED = 'stored_total{kind="events"}'
RUN = "import sys; from edgetally.cli import main; sys.exit(main(sys.argv[1:]))"


class CollectorProcess:
    """`edge collect` in its own process, as in production."""

    def __init__(self, broker: Mosquitto, db_url: str, workdir: Path, client_id: str, *extra: str) -> None:
        self.port = free_port()
        self.log = workdir / f"{client_id}.log"
        self.args = [
            sys.executable,
            "-c",
            RUN,
            "collect",
            "--mqtt",
            broker.url,
            "--db",
            db_url,
            "--client-id",
            client_id,
            "--spool",
            str(workdir / f"spool-{client_id}.sqlite"),
            "--metrics",
            f"127.0.0.1:{self.port}",
            *extra,
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> CollectorProcess:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT)
        return self

    def wait_healthy(self) -> CollectorProcess:
        if not wait_until(lambda: self.get("/healthz").startswith("ok"), 60, 0.1):
            raise RuntimeError(f"collector did not become healthy; see {self.log}")
        return self

    def start(self) -> CollectorProcess:
        return self.spawn().wait_healthy()

    def get(self, path: str) -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as resp:
                return resp.read().decode()
        except OSError:
            return ""

    def metric(self, name: str) -> float:
        total = 0.0
        for line in self.get("/metrics").splitlines():
            if line.startswith(f"edgetally_collect_{name}") and not line.startswith("#"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)


class Pacer(threading.Thread):
    """Device k of the fleet emits one event every 1/rate s, at offset k/N of a period (evenly staggered)."""

    def __init__(self, devices: list[tuple[int, Device]], fleet_size: int, rate: float, seconds: float) -> None:
        super().__init__(name="pacer", daemon=True)
        self.devices, self.n, self.period, self.seconds = devices, fleet_size, 1.0 / rate, seconds
        self.behind_max = 0.0

    def run(self) -> None:
        t0 = time.monotonic()
        schedule = sorted((k * self.period / self.n, i) for i, (k, _) in enumerate(self.devices))
        tick = 0
        while True:
            for offset, i in schedule:
                due = t0 + tick * self.period + offset
                if due - t0 >= self.seconds:
                    return
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                else:
                    self.behind_max = max(self.behind_max, -delay)
                self.devices[i][1].emit(1)
            tick += 1


def _device_worker(
    indices: list[int],
    fleet_size: int,
    broker_url: str,
    workdir: str,
    rate: float,
    seconds: float,
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    """One process of up to DEVICES_PER_PROCESS simulated boards (paho's select() caps one process
    near 1024 file descriptors: ~170 clients with their outboxes)."""
    logging.basicConfig(level=logging.ERROR)
    devices = [(k, Device(f"dev{k:03d}", broker_url, Path(workdir))) for k in indices]
    wait_until(lambda: all(d.sink.connected for _, d in devices), 120)
    ready.put(sum(d.sink.connected for _, d in devices))
    go.wait()
    pacer = Pacer(devices, fleet_size, rate, seconds)
    pacer.start()
    pacer.join()
    with ThreadPoolExecutor(8) as pool:  # what a board does on stop: drain for a few seconds, keep the rest
        list(pool.map(lambda kd: kd[1].close(), devices))
    results.put(({d.name: d.sent for _, d in devices}, pacer.behind_max))


def _start_fleet(args: argparse.Namespace, tmp: Path, broker: Mosquitto) -> tuple[list[Any], Any, Any]:
    ctx = mp.get_context("fork")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    groups = [
        list(range(args.devices))[i : i + DEVICES_PER_PROCESS] for i in range(0, args.devices, DEVICES_PER_PROCESS)
    ]
    workers = [
        ctx.Process(
            target=_device_worker,
            args=(g, args.devices, broker.url, str(tmp), args.rate, args.seconds, ready, go, results),
        )
        for g in groups
    ]
    for w in workers:
        w.start()
    connected = sum(ready.get(timeout=180) for _ in workers)
    assert connected == args.devices, f"only {connected} of {args.devices} devices connected"
    return workers, go, results


def scenario(args: argparse.Namespace, tmp: Path, broker: Mosquitto, db: Postgres | None) -> dict[str, Any]:
    db_url = db.create_database("fleet") if db is not None else f"sqlite:///{tmp / 'fleet.db'}"
    share = ["--share", "fleet"] if args.collectors > 1 else []
    cols = [
        CollectorProcess(broker, db_url, tmp, f"fleet-{i}", "--gap-grace", "10", *share).start()
        for i in range(args.collectors)
    ]
    workers, go, results = _start_fleet(args, tmp, broker)
    t0 = time.time()
    go.set()
    windows = _outages(args.seconds, t0, broker, db)
    time.sleep(max(0.0, t0 + args.seconds - time.time()))
    t_end = time.time()
    sent_by_device: dict[str, int] = {}
    behind = 0.0
    for _ in workers:
        sent, lag = results.get(timeout=300)
        sent_by_device.update(sent)
        behind = max(behind, lag)
    for w in workers:
        w.join(60)
    sent_total = sum(sent_by_device.values())

    def stored() -> float:
        return sum(c.metric(STORED) for c in cols)

    if not wait_until(lambda: stored() >= sent_total, 300, 0.5):
        print(f"warning: the collectors stored {stored()} of {sent_total} events", file=sys.stderr)
    time.sleep(12)  # past --gap-grace and one gap check: a hole would be reported by now
    result = _score(db_url, sent_by_device, windows, t0, t_end)
    result.update(
        {
            "collectors": len(cols),
            "pacer_behind_max_s": round(behind, 3),
            **{
                k: sum(c.metric(m) for c in cols)
                for k, m in (
                    ("rejected", "rejected_total"),
                    ("collector_duplicates", "duplicates_total"),
                    ("gaps_metric", "seq_gaps_total"),
                    ("missing_in_gaps", "missing_events"),
                    ("db_errors", "db_errors_total"),
                    ("mqtt_reconnects", "mqtt_reconnects_total"),
                )
            },
        }
    )
    for c in cols:
        c.stop()
    return result


def _outages(seconds: float, t0: float, broker: Mosquitto, db: Postgres | None) -> list[tuple[float, float]]:
    """Broker restart at S/4 (clean stop, 2 s down), database down 10 s from S/2. Returns the windows."""
    windows = []
    time.sleep(max(0.0, t0 + seconds / 4 - time.time()))
    a = time.time()
    broker.stop(kill=False)
    time.sleep(2)
    broker.start()
    windows.append((a, time.time()))
    if db is not None:
        time.sleep(max(0.0, t0 + seconds / 2 - time.time()))
        a = time.time()
        db.stop()
        time.sleep(10)
        db.start()
        windows.append((a, time.time()))
    return windows


def _score(
    db_url: str, sent_by_device: dict[str, int], windows: list[tuple[float, float]], t0: float, t_end: float
) -> dict[str, Any]:
    sent = sum(sent_by_device.values())
    ts_col = "extract(epoch FROM {c})::float8" if not db_url.startswith("sqlite") else "{c}"
    rows = query(db_url, f"SELECT device_id, seq, {ts_col.format(c='ts')}, {ts_col.format(c='stored_at')} FROM events")
    seqs = {(d, int(s)) for d, s, _, _ in rows}
    expected = {(d, s) for d, n in sent_by_device.items() for s in range(1, n + 1)}
    ts = np.array([r[2] for r in rows])
    lag = np.array([r[3] - r[2] for r in rows])
    calm = np.ones(len(rows), bool)
    for a, b in windows:
        calm &= ~((ts >= a - 1) & (ts <= b + 15))  # counted during an outage or its catch-up
    stored = np.array(sorted(r[3] for r in rows))
    per_second = np.bincount((stored - t0).astype(int).clip(0)) if len(stored) else np.zeros(1)
    steady = per_second[2 : int(len(per_second) * 0.2)]  # before the first outage
    return {
        "devices": len(sent_by_device),
        "seconds": round(t_end - t0, 1),
        "events_sent": sent,
        "rows": len(rows),
        "lost": len(expected - seqs),
        "unexpected_rows": len(seqs - expected),
        "duplicate_rows": len(rows) - len(seqs),
        "seq_gaps_table": int(query(db_url, "SELECT count(*) FROM seq_gaps")[0][0]),
        "devices_with_open_holes": int(query(db_url, "SELECT count(*) FROM devices WHERE checked_seq < max_seq")[0][0]),
        "offered_events_per_s": round(sent / (t_end - t0), 1),
        "ingest_events_per_s_steady": round(float(steady.mean()), 1) if len(steady) else None,
        "ingest_events_per_s_peak_1s": int(per_second.max()),
        "latency_all_p50_ms": _ms(lag, 50),
        "latency_all_p99_ms": _ms(lag, 99),
        "latency_outside_outages_p50_ms": _ms(lag[calm], 50),
        "latency_outside_outages_p99_ms": _ms(lag[calm], 99),
        "outage_windows_s": [(round(a - t0, 1), round(b - t0, 1)) for a, b in windows],
    }


def _ms(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)) * 1000, 1) if len(values) else None


def max_ingest(
    args: argparse.Namespace, tmp: Path, broker: Mosquitto, db: Postgres | None, n_collectors: int, repeat: int = 0
) -> dict[str, Any]:
    name = f"ingest{n_collectors}r{repeat}"
    db_url = db.create_database(name) if db is not None else f"sqlite:///{tmp / (name + '.db')}"
    share = ["--share", name] if n_collectors > 1 else []
    cols = [CollectorProcess(broker, db_url, tmp, f"{name}-{i}", *share) for i in range(n_collectors)]
    startup_cpu = 0.0
    for c in cols:  # creates the sessions (and the shared subscription), then leaves; measures a start's CPU
        c.start()
        startup_cpu += _cpu_seconds([c.proc.pid] if c.proc else [])
        c.stop()
    per_device = args.ingest_events // 20
    devices = [Device(f"{name}-dev{i:02d}", broker.url, tmp) for i in range(20)]
    for d in devices:
        d.emit(per_device)
    assert wait_until(lambda: all(d.outbox_depth == 0 for d in devices), 300, 0.2), "devices did not drain"
    for d in devices:
        d.close()
    total = per_device * 20
    pids = {"mosquitto": [broker.proc.pid] if broker.proc else [], "postgres": _postgres_pids(db)}
    cpu0 = {k: _cpu_seconds(v) for k, v in pids.items()}
    for c in cols:  # all at once: the drain's clock starts with the first row stored
        c.spawn()
    for c in cols:
        c.wait_healthy()
    pids["postgres"] = _postgres_pids(db)  # with the collectors' backends
    ok = wait_until(lambda: int(query(db_url, "SELECT count(*) FROM events")[0][0]) >= total, 600, 0.5)
    cpu = {k: round(_cpu_seconds(v) - cpu0.get(k, 0.0), 2) for k, v in pids.items()}
    # a collector's CPU from its start, less what starting one costs (imports, connect)
    cpu["collectors"] = round(_cpu_seconds([c.proc.pid for c in cols if c.proc]) - startup_cpu, 2)
    shares = [c.metric(STORED) for c in cols]
    for c in cols:
        c.stop()
    epoch = "extract(epoch FROM stored_at)::float8" if db is not None else "stored_at"
    first, last, rows = query(db_url, f"SELECT min({epoch}), max({epoch}), count(*) FROM events")[0]
    return {
        "collectors": n_collectors,
        "events": total,
        "rows": int(rows),
        "complete": ok and int(rows) == total,
        "per_collector": shares,
        "seconds": round(last - first, 2),
        "events_per_s": round(int(rows) / (last - first), 1),
        "cpu_seconds_during_drain": cpu,
        "collector_cpu_us_per_event": round(cpu["collectors"] / total * 1e6, 1),
    }


def _cpu_seconds(pids: list[int]) -> float:
    """user + system CPU of these processes (Linux /proc), so figures can be read apart from the load."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _postgres_pids(db: Postgres | None) -> list[int]:
    if db is None:
        return []
    master = int((db.data / "postmaster.pid").read_text().split()[0])
    kids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(int(p.name)) == master]
    return [master, *kids]


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError):
        return -1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--rate", type=float, default=2.0, help="events per second per device")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    ap.add_argument("--collectors", type=int, default=1, help="scenario collectors (2+: a shared subscription)")
    ap.add_argument("--ingest-events", type=int, default=50_000)
    ap.add_argument("--ingest-repeats", type=int, default=2, help="runs of (1 collector, 2 collectors), interleaved")
    ap.add_argument("--skip-scenario", action="store_true")
    ap.add_argument("--skip-ingest", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("edgetally.sinks.mqtt").setLevel(logging.ERROR)  # 200 devices x "broker unreachable"
    if args.db == "postgres" and why_no_postgres():
        print(f"cannot run: {why_no_postgres()}", file=sys.stderr)
        return 2
    out: dict[str, Any] = {"load_average_at_start": os.getloadavg(), "cpus": os.cpu_count(), "db": args.db}
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as d:
        tmp = Path(d)
        broker = Mosquitto(tmp / "broker", persistence=True).start()
        db = Postgres(durable=True).start() if args.db == "postgres" else None
        try:
            if not args.skip_scenario:
                out["scenario"] = scenario(args, tmp, broker, db)
                print("scenario", json.dumps(out["scenario"]), flush=True)
            if not args.skip_ingest:
                out["max_ingest"] = [
                    max_ingest(args, tmp, broker, db, n, r) for r in range(args.ingest_repeats) for n in (1, 2)
                ]  # interleaved
                print("max_ingest", json.dumps(out["max_ingest"]), flush=True)
        finally:
            broker.stop()
            if db is not None:
                db.cleanup()
    out["load_average_at_end"] = os.getloadavg()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
