-- pgbench script: the same UPDATE on a versioned table; the slotguard trigger checks the row and
-- bumps version and updated_at although the statement does not mention them.
\set id random(1, 100000)
UPDATE t_versioned SET balance = balance + 1 WHERE id = :id;
