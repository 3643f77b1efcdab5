-- error_fields: slotguard's errors name their table, column and rule in the error's own fields
-- (schema_name, table_name, column_name, constraint_name), which drivers and ORMs expose
-- (node-postgres err.table / err.constraint, Sequelize's ExclusionConstraintError.constraint,
-- PL/pgSQL GET STACKED DIAGNOSTICS, JDBC ServerErrorMessage.getTable()).
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS slotguard;
DROP SCHEMA IF EXISTS ef CASCADE;
RESET client_min_messages;
CREATE SCHEMA ef;

-- fields(sql) runs sql and returns the caught error's SQLSTATE and fields.
CREATE FUNCTION ef.fields(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; sch text; tbl text; col text; con text;
BEGIN
  EXECUTE sql;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, sch = SCHEMA_NAME, tbl = TABLE_NAME,
                          col = COLUMN_NAME, con = CONSTRAINT_NAME;
  RETURN format('%s schema=%s table=%s column=%s constraint=%s', st, sch, tbl, col, con);
END $$;

CREATE TABLE ef.appt (id int PRIMARY KEY, room int, during tstzrange, status text,
                      rev bigint NOT NULL DEFAULT 0);
SELECT slotguard.enable_versioning('ef.appt', version_column => 'rev');
SELECT slotguard.add_overlap_rule('ef.appt', 'room_busy', '{room}', '{during}');
SELECT slotguard.add_transition_rule('ef.appt', 'status', '{"pending": ["confirmed"]}');
INSERT INTO ef.appt (id, room, during, status)
VALUES (1, 101, '[2030-01-01 09:00, 2030-01-01 10:00)', 'pending');

-- SG001 from the trigger and from update_versioned: the table and its version column.
SELECT ef.fields($$UPDATE ef.appt SET status = 'confirmed', rev = 7 WHERE id = 1$$);
SELECT ef.fields($$SELECT slotguard.update_versioned('ef.appt', '1', 7, '{"status": "confirmed"}')$$);
-- SG002: the table.
SELECT ef.fields($$SELECT slotguard.update_versioned('ef.appt', '99', 0, '{"status": "confirmed"}')$$);
-- SG005: the table and the state column.
SELECT ef.fields($$UPDATE ef.appt SET status = 'gone' WHERE id = 1$$);
-- 23P01: the table and the rule's name as the constraint.
SELECT ef.fields($$INSERT INTO ef.appt (id, room, during, status)
                   VALUES (2, 101, '[2030-01-01 09:30, 2030-01-01 10:30)', 'pending')$$);
-- ... also when adding a rule that existing rows violate.
INSERT INTO ef.appt (id, room, during, status)
VALUES (3, 102, '[2030-01-01 09:30, 2030-01-01 10:30)', 'pending');
SELECT ef.fields($$SELECT slotguard.add_overlap_rule('ef.appt', 'status_once', '{status}', '{during}')$$);
-- SG003 of a one_per_holder slot names that rule as the constraint; plain sold out does not.
SELECT slotguard.create_slot(1, one_per_holder => true) AS oph \gset
SELECT holder FROM slotguard.reserve(:oph, 'ann');
SELECT ef.fields(format('SELECT slotguard.reserve(%s, %L)', :oph, 'ann'));
SELECT ef.fields(format('SELECT slotguard.reserve(%s, %L)', :oph, 'bob'));
-- Errors about no table carry no table fields.
SELECT ef.fields($$SELECT slotguard.reserve(-1, 'ann')$$);

SET client_min_messages = warning;
DROP SCHEMA ef CASCADE;
