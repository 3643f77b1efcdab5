-- Setup for bench/versioning.sh: two tables with identical columns and 100,000 rows each.
-- t_plain is the peer (no trigger); t_versioned gets slotguard.enable_versioning.
-- Autovacuum is off on both: versioning.sh vacuums them itself between measurements, so that a
-- background vacuum does not land in one measurement and not in another.
\set ON_ERROR_STOP on
CREATE EXTENSION IF NOT EXISTS slotguard;

DROP TABLE IF EXISTS t_plain, t_versioned;

CREATE TABLE t_plain (
  id         bigint PRIMARY KEY,
  balance    int NOT NULL DEFAULT 0,
  note       text,
  version    bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
) WITH (autovacuum_enabled = off);

CREATE TABLE t_versioned (LIKE t_plain INCLUDING ALL) WITH (autovacuum_enabled = off);

INSERT INTO t_plain (id, note)
  SELECT i, 'account ' || i FROM generate_series(1, 100000) AS i;
INSERT INTO t_versioned SELECT * FROM t_plain;

-- Columns already exist, so this only installs the trigger (and checks the column types).
SELECT slotguard.enable_versioning('t_versioned');

VACUUM ANALYZE t_plain;
VACUUM ANALYZE t_versioned;
CHECKPOINT;
