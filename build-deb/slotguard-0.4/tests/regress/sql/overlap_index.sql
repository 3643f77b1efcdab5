-- overlap_index: a rule uses an index that fits instead of building a second one; dropping the
-- rule that built it hands the index to the rule still using it; the last one drops it.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS slotguard;
DROP TABLE IF EXISTS oix;
RESET client_min_messages;
CREATE TABLE oix (id int PRIMARY KEY, room int, s int, e int);
SELECT slotguard.add_overlap_rule('oix', 'one', '{room}', '{s,e}');
SELECT slotguard.add_overlap_rule('oix', 'two', '{room}', '{s,e}', capacity => 2);
SELECT rule_name, index_name FROM slotguard.overlap_rules WHERE tbl = 'oix'::regclass ORDER BY 1;
SELECT count(*) AS gist_indexes FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 JOIN pg_am a ON a.oid = c.relam WHERE i.indrelid = 'oix'::regclass AND a.amname = 'gist';
INSERT INTO oix VALUES (1, 1, 0, 10);
INSERT INTO oix VALUES (2, 1, 5, 15);
SELECT slotguard.drop_overlap_rule('oix', 'one');
SELECT rule_name, index_name FROM slotguard.overlap_rules WHERE tbl = 'oix'::regclass ORDER BY 1;
-- the capacity-2 rule still holds, served by the handed-over index
INSERT INTO oix VALUES (3, 1, 8, 9);
INSERT INTO oix VALUES (4, 1, 20, 30);
SELECT slotguard.drop_overlap_rule('oix', 'two');
SELECT count(*) AS gist_indexes FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 JOIN pg_am a ON a.oid = c.relam WHERE i.indrelid = 'oix'::regclass AND a.amname = 'gist';
DROP TABLE oix;
