-- pgbench script: plain UPDATE by primary key on a table without slotguard (the peer).
\set id random(1, 100000)
UPDATE t_plain SET balance = balance + 1 WHERE id = :id;
