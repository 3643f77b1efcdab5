-- schema.sql: the application's own tables. Slots, seats, holds and bookings live in slotguard
-- (slotguard.slots / slotguard.bookings); we only record which doctor a slot belongs to.
CREATE TABLE doctors (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name           text NOT NULL,
  specialization text,
  created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE doctor_slots (
  slot_id   bigint PRIMARY KEY REFERENCES slotguard.slots (id),
  doctor_id bigint NOT NULL REFERENCES doctors (id)
);
CREATE INDEX ON doctor_slots (doctor_id);
