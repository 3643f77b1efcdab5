-- schema.sql: the clinic's tables, its three database roles and their row-level security.
-- Run by test.sh with psql variables role_doctor, role_patient, role_admin (names unique to the
-- test database: roles are cluster-wide).

-- One NOLOGIN role per application role; the app connects as its login user and does
-- SET LOCAL ROLE per request (postgres may SET ROLE to any of them).
CREATE ROLE :"role_doctor" NOLOGIN;
CREATE ROLE :"role_patient" NOLOGIN;
CREATE ROLE :"role_admin" NOLOGIN;

CREATE TABLE doctors  (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE patients (id int PRIMARY KEY, name text NOT NULL);

-- The doctor's schedule: one row per slotguard slot (capacity, hold TTL and the live count of
-- seats live in slotguard.slots / slotguard.bookings, not here).
CREATE TABLE doctor_slots (
    slot_id   bigint PRIMARY KEY REFERENCES slotguard.slots (id),
    doctor_id int NOT NULL REFERENCES doctors
);

CREATE TABLE appointments (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slot_id    bigint NOT NULL REFERENCES doctor_slots,
    booking_id bigint NOT NULL UNIQUE REFERENCES slotguard.bookings (id),
    doctor_id  int NOT NULL REFERENCES doctors,
    patient_id int NOT NULL REFERENCES patients,
    status     text NOT NULL DEFAULT 'pending',
    reason     text,
    notes      text NOT NULL DEFAULT ''
);
CREATE INDEX ON appointments (doctor_id);
CREATE INDEX ON appointments (patient_id);

-- Optimistic staff edits (version, created_at, updated_at) and an audit trail written by the
-- database, with the app user and role of each change.
SELECT slotguard.enable_versioning('appointments', audit => true);

-- Who may move an appointment from which state to which. Nobody may do anything but create a
-- pending appointment unless acting as one of these roles (slotguard.actor_role).
SELECT slotguard.add_transition_rule('appointments', 'status',
  '{"": ["pending"]}',
  '{"doctor":  {"pending": ["confirmed", "rejected"], "confirmed": ["completed", "no_show"]},
    "patient": {"pending": ["cancelled"], "confirmed": ["cancelled"]},
    "admin":   {"pending": ["confirmed", "rejected", "cancelled"],
                "confirmed": ["completed", "no_show", "cancelled"]}}');

-- Ownership: a doctor sees (and so can change) only their own appointments, a patient only
-- theirs; admins see all. app.doctor_id / app.patient_id are set per transaction by the app.
ALTER TABLE appointments ENABLE ROW LEVEL SECURITY;
CREATE POLICY doctor_own ON appointments TO :"role_doctor"
    USING (doctor_id = nullif(current_setting('app.doctor_id', true), '')::int);
CREATE POLICY patient_own ON appointments TO :"role_patient"
    USING (patient_id = nullif(current_setting('app.patient_id', true), '')::int);
CREATE POLICY admin_all ON appointments TO :"role_admin" USING (true);

-- Privileges (docs/guarantees.md "Privileges"): slotguard grants nothing to PUBLIC, so schema USAGE first.
GRANT USAGE ON SCHEMA slotguard TO :"role_doctor", :"role_patient", :"role_admin";
GRANT SELECT ON doctors, patients, doctor_slots TO :"role_doctor", :"role_patient", :"role_admin";
GRANT SELECT, UPDATE (status, notes, version) ON appointments TO :"role_doctor";
GRANT SELECT, INSERT, UPDATE (status, version) ON appointments TO :"role_patient";
GRANT SELECT, INSERT, UPDATE ON appointments, doctor_slots TO :"role_admin";
GRANT SELECT ON slotguard.stats TO :"role_admin";

INSERT INTO doctors VALUES (1, 'Dr. Lee'), (2, 'Dr. Okafor');
INSERT INTO patients SELECT g, 'Patient ' || g FROM generate_series(1, 40) g;
