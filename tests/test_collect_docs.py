"""What docs/collect.md and the Grafana dashboard promise, checked against a real database:
every documented query and every panel's SQL runs on the collector's schema and returns rows;
the interval-count contract parses with the collector's own validator; the systemd unit verifies."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgetally.collect.messages import (
    EventRecord,
    IntervalRecord,
    StatusRecord,
    parse_message,
)
from edgetally.collect.store import open_store
from edgetally.history.rows import IntervalRow
from edgetally.sinks.topics import interval_payload

REPO = Path(__file__).resolve().parents[1]
DOC = (REPO / "docs" / "collect.md").read_text()
DASHBOARD = json.loads((REPO / "docs" / "grafana" / "edgetally-fleet.json").read_text())


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC, flags=re.DOTALL)


def sample(url: str) -> None:
    """A little of everything, in the last hours, through the store itself."""
    now = time.time()
    records: list[object] = [
        EventRecord(
            dev,
            seq,
            now - 3600 + 7 * seq,
            "north",
            "line",
            "car" if seq % 2 else "bus",
            "in" if seq % 3 else "out",
            seq,
            0.9,
            seq,
            seq / 25,
            None,
            now - 3600 + 7 * seq + 0.2,
        )
        for dev in ("j1", "j2")
        for seq in (*range(1, 40), *range(45, 60))
    ]
    records += [
        IntervalRecord("j1", "north", "line", "car", "in", now - 1800, now - 900, 9, 812.0, 20000, None, now),
        IntervalRecord(
            "j1", "junction", "movement", "car", "north->east", now - 1800, now - 900, 4, 812.0, 20000, None, now
        ),
        StatusRecord("j1", "availability", "online", now),
        StatusRecord("j2", "availability", "offline", now),
        StatusRecord("j1", "stats", '{"v":1,"ts":1,"fps":12.5,"outbox_depth":0,"outbox_dropped":3}', now),
    ]
    store = open_store(url)
    store.open()
    store.write(records, now)  # type: ignore[arg-type]
    store.check_gaps(now + 100, grace_s=0)  # seq 40..44 of each device: two gaps
    store.close()


def grafana_sql(sql: str) -> str:
    """Grafana's PostgreSQL macros and the multi-value $device variable, expanded as Grafana does."""

    def group(m: re.Match[str]) -> str:
        col, n, unit = m.group(1), int(m.group(2)), m.group(3)
        s = n * {"s": 1, "m": 60, "h": 3600}[unit]
        return f'to_timestamp(floor(extract(epoch FROM {col}) / {s}) * {s}) AS "time"'

    sql = re.sub(r"\$__timeGroupAlias\((\w+),\s*'(\d+)([smh])'\)", group, sql)
    sql = re.sub(r"\$__timeFilter\((\w+)\)", r"\1 BETWEEN now() - interval '1 day' AND now()", sql)
    assert "$__" not in sql, f"a Grafana macro this test does not expand: {sql}"
    return sql.replace("$device", "'j1','j2'")


def test_documented_postgres_queries_and_every_dashboard_panel_run(pg_url: str) -> None:
    import psycopg

    sample(pg_url)
    queries = blocks("sql")
    assert len(queries) >= 5
    targets = [(p["title"], t["rawSql"]) for p in DASHBOARD["panels"] for t in p["targets"]]
    with psycopg.connect(pg_url) as conn:
        for sql in queries:
            assert conn.execute(sql).fetchall(), f"no rows from the documented query:\n{sql}"
        variable = DASHBOARD["templating"]["list"][0]["query"]
        assert [r[0] for r in conn.execute(variable).fetchall()] == ["j1", "j2"]
        for title, sql in targets:
            assert conn.execute(grafana_sql(sql)).fetchall(), f"panel {title!r} returned no rows"


def test_documented_sqlite_queries_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    sample(url)
    with sqlite3.connect(tmp_path / "c.db") as conn:
        for sql in blocks("sqlite"):
            assert conn.execute(sql).fetchall(), f"no rows from the documented query:\n{sql}"


def test_the_documented_interval_payload_is_what_the_collector_accepts() -> None:
    section = DOC[DOC.index("## Interval counts") :]
    payload = re.search(r"```json\n(.*?)```", section, flags=re.DOTALL).group(1)  # type: ignore[union-attr]
    rec = parse_message("edgetally", "edgetally/j1/intervals", payload.encode(), 0.0)
    assert isinstance(rec, IntervalRecord) and (rec.count, rec.observed_s, rec.extra) == (12, 897.5, None)
    device = interval_payload(
        IntervalRow(1777875300, 900, "junction-3", "north", "line", "car", "in", 12, 22400, 897.5).to_json()
    )
    assert json.loads(payload).keys() == device.keys()  # the documented row is the device's row, key for key


def test_dashboard_is_an_importable_grafana_dashboard() -> None:
    assert DASHBOARD["__inputs"][0]["pluginId"] == "grafana-postgresql-datasource"
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids)) and all(p["targets"] for p in DASHBOARD["panels"])
    assert all(t["datasource"]["uid"] == "${DS_EDGETALLY}" for p in DASHBOARD["panels"] for t in p["targets"])


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_the_collector_unit_verifies(tmp_path: Path) -> None:
    text = (REPO / "systemd" / "edgetally-collect.service").read_text()
    unit = tmp_path / "edgetally-collect.service"
    unit.write_text(text.replace("/opt/edgetally/venv/bin/edge", sys.executable))
    out = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], check=False, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and out.stdout + out.stderr == "", out.stdout + out.stderr
