-- pgbench script: the versioned UPDATE with an explicit version assertion. Setting the version to
-- the stored value is a valid (never stale) assertion, so the trigger takes its "version named in
-- the SET list" path on every row and still bumps the version.
\set id random(1, 100000)
UPDATE t_versioned SET balance = balance + 1, version = version WHERE id = :id;
