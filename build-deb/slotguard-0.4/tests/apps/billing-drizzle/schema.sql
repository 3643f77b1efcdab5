-- schema.sql: the billing tables. slotguard adds version uuid, created_at and updated_at, and the
-- trigger that checks the version on every UPDATE (from Drizzle, update_versioned or psql alike).
CREATE TABLE billing_customers (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  external_id   text NOT NULL UNIQUE,
  email         text NOT NULL,
  name          text,
  balance_cents integer NOT NULL DEFAULT 0,
  livemode      boolean NOT NULL DEFAULT false,
  deleted_at    timestamptz                      -- soft delete: update_versioned treats it as gone
);

CREATE TABLE billing_subscriptions (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  customer_id        uuid NOT NULL REFERENCES billing_customers (id),
  plan               text NOT NULL,
  status             text NOT NULL DEFAULT 'active'
                     CHECK (status IN ('trialing', 'active', 'past_due', 'canceled')),
  quantity           integer NOT NULL DEFAULT 1,
  current_period_end timestamptz,
  deleted_at         timestamptz
);

SELECT slotguard.enable_versioning('billing_customers', version_type => 'uuid');
SELECT slotguard.enable_versioning('billing_subscriptions', version_type => 'uuid');
