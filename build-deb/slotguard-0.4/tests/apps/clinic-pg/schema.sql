-- schema.sql: the clinic's tables. slotguard adds version/created_at/updated_at, the version
-- trigger and the audit trigger (the activity log is slotguard.audit).
CREATE TABLE appointments (
  id          serial PRIMARY KEY,
  patient     text NOT NULL,
  doctor      text NOT NULL,
  starts_at   timestamptz NOT NULL,
  reason      text,
  status      text NOT NULL DEFAULT 'pending'
              CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled', 'completed')),
  decided_by  text
);

CREATE TABLE medicines (
  id     serial PRIMARY KEY,
  name   text NOT NULL UNIQUE,
  stock  integer NOT NULL CHECK (stock >= 0)
);

SELECT slotguard.enable_versioning('appointments', audit => true);
SELECT slotguard.enable_versioning('medicines', audit => true);
