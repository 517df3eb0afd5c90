"""The collector's tables and views, for PostgreSQL and for SQLite (docs/collect.md explains them).

PostgreSQL keeps times as ``timestamptz`` (so ``time_bucket``/``date_bin`` and Grafana's time
macros work); SQLite keeps epoch seconds (REAL), which its date functions read with 'unixepoch'.
``events``'s primary key ``(device_id, seq)`` is the exactly-once guarantee. ``interval_counts``'s
key holds ``bin_start``, so TimescaleDB can make it a hypertable as is (docs/collect.md).
"""

from __future__ import annotations

SCHEMA_VERSION = 1

POSTGRES = """
CREATE TABLE IF NOT EXISTS edgetally_meta (key text PRIMARY KEY, value text NOT NULL);

CREATE TABLE IF NOT EXISTS events (
  device_id   text             NOT NULL,
  seq         bigint           NOT NULL,
  ts          timestamptz      NOT NULL,
  counter     text             NOT NULL,
  kind        text             NOT NULL,
  class       text             NOT NULL,
  dir         text             NOT NULL,
  track_id    bigint           NOT NULL,
  score       real             NOT NULL,
  frame       bigint           NOT NULL,
  src_ts      double precision NOT NULL,
  extra       jsonb,
  received_at timestamptz      NOT NULL,
  stored_at   timestamptz      NOT NULL,
  PRIMARY KEY (device_id, seq)
);
CREATE INDEX IF NOT EXISTS events_ts_idx ON events (ts);

CREATE TABLE IF NOT EXISTS interval_counts (
  device_id   text             NOT NULL,
  counter     text             NOT NULL,
  class       text             NOT NULL,
  dir         text             NOT NULL,
  bin_start   timestamptz      NOT NULL,
  bin_end     timestamptz      NOT NULL,
  kind        text,
  count       bigint           NOT NULL,
  observed_s  double precision NOT NULL,
  frames      bigint,
  extra       jsonb,
  received_at timestamptz      NOT NULL,
  stored_at   timestamptz      NOT NULL,
  PRIMARY KEY (device_id, counter, class, dir, bin_start, bin_end)
);
CREATE INDEX IF NOT EXISTS interval_counts_start_idx ON interval_counts (bin_start);

CREATE TABLE IF NOT EXISTS devices (
  device_id       text PRIMARY KEY,
  availability    text,
  availability_at timestamptz,
  state           text,
  state_at        timestamptz,
  stats           jsonb,
  stats_at        timestamptz,
  first_seq       bigint,
  max_seq         bigint,
  max_seq_ts      timestamptz,
  checked_seq     bigint,
  last_event_at   timestamptz
);

CREATE TABLE IF NOT EXISTS seq_gaps (
  device_id   text        NOT NULL,
  first_seq   bigint      NOT NULL,
  last_seq    bigint      NOT NULL,
  detected_at timestamptz NOT NULL,
  filled_at   timestamptz,
  PRIMARY KEY (device_id, first_seq)
);

CREATE OR REPLACE VIEW event_counts_15m AS
SELECT device_id, counter, class, dir,
       date_bin('15 minutes', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bin_start, count(*) AS count
FROM events GROUP BY 1, 2, 3, 4, 5;

CREATE OR REPLACE VIEW seq_gap_status AS
SELECT g.device_id, g.first_seq, g.last_seq, g.last_seq - g.first_seq + 1 AS size,
       g.last_seq - g.first_seq + 1 - (SELECT count(*) FROM events e
         WHERE e.device_id = g.device_id AND e.seq BETWEEN g.first_seq AND g.last_seq) AS missing,
       g.detected_at, g.filled_at
FROM seq_gaps g;
"""

SQLITE = """
CREATE TABLE IF NOT EXISTS edgetally_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS events (
  device_id   TEXT    NOT NULL,
  seq         INTEGER NOT NULL,
  ts          REAL    NOT NULL,
  counter     TEXT    NOT NULL,
  kind        TEXT    NOT NULL,
  class       TEXT    NOT NULL,
  dir         TEXT    NOT NULL,
  track_id    INTEGER NOT NULL,
  score       REAL    NOT NULL,
  frame       INTEGER NOT NULL,
  src_ts      REAL    NOT NULL,
  extra       TEXT,
  received_at REAL    NOT NULL,
  stored_at   REAL    NOT NULL,
  PRIMARY KEY (device_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_ts_idx ON events (ts);

CREATE TABLE IF NOT EXISTS interval_counts (
  device_id   TEXT    NOT NULL,
  counter     TEXT    NOT NULL,
  class       TEXT    NOT NULL,
  dir         TEXT    NOT NULL,
  bin_start   REAL    NOT NULL,
  bin_end     REAL    NOT NULL,
  kind        TEXT,
  count       INTEGER NOT NULL,
  observed_s  REAL    NOT NULL,
  frames      INTEGER,
  extra       TEXT,
  received_at REAL    NOT NULL,
  stored_at   REAL    NOT NULL,
  PRIMARY KEY (device_id, counter, class, dir, bin_start, bin_end)
);
CREATE INDEX IF NOT EXISTS interval_counts_start_idx ON interval_counts (bin_start);

CREATE TABLE IF NOT EXISTS devices (
  device_id       TEXT PRIMARY KEY,
  availability    TEXT,
  availability_at REAL,
  state           TEXT,
  state_at        REAL,
  stats           TEXT,
  stats_at        REAL,
  first_seq       INTEGER,
  max_seq         INTEGER,
  max_seq_ts      REAL,
  checked_seq     INTEGER,
  last_event_at   REAL
);

CREATE TABLE IF NOT EXISTS seq_gaps (
  device_id   TEXT    NOT NULL,
  first_seq   INTEGER NOT NULL,
  last_seq    INTEGER NOT NULL,
  detected_at REAL    NOT NULL,
  filled_at   REAL,
  PRIMARY KEY (device_id, first_seq)
);

CREATE VIEW IF NOT EXISTS event_counts_15m AS
SELECT device_id, counter, class, dir, CAST(ts / 900 AS INTEGER) * 900 AS bin_start, count(*) AS count
FROM events GROUP BY 1, 2, 3, 4, 5;

CREATE VIEW IF NOT EXISTS seq_gap_status AS
SELECT g.device_id, g.first_seq, g.last_seq, g.last_seq - g.first_seq + 1 AS size,
       g.last_seq - g.first_seq + 1 - (SELECT count(*) FROM events e
         WHERE e.device_id = g.device_id AND e.seq BETWEEN g.first_seq AND g.last_seq) AS missing,
       g.detected_at, g.filled_at
FROM seq_gaps g;
"""
