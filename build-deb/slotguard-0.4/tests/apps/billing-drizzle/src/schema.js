'use strict';
// Drizzle definitions of the tables in ../schema.sql. `version`, `created_at` and `updated_at` are
// added and maintained by slotguard.enable_versioning(..., version_type => 'uuid'): no $onUpdate
// hooks here, the database bumps the version and sets updated_at on every UPDATE.
const { pgTable, uuid, text, integer, boolean, timestamp } = require('drizzle-orm/pg-core');

const versionColumns = () => ({
  version: uuid('version').notNull().defaultRandom(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  deletedAt: timestamp('deleted_at', { withTimezone: true }),
});

const billingCustomers = pgTable('billing_customers', {
  id: uuid('id').primaryKey().defaultRandom(),
  externalId: text('external_id').notNull().unique(),
  email: text('email').notNull(),
  name: text('name'),
  balanceCents: integer('balance_cents').notNull().default(0),
  livemode: boolean('livemode').notNull().default(false),
  ...versionColumns(),
});

const billingSubscriptions = pgTable('billing_subscriptions', {
  id: uuid('id').primaryKey().defaultRandom(),
  customerId: uuid('customer_id').notNull().references(() => billingCustomers.id),
  plan: text('plan').notNull(),
  status: text('status').notNull().default('active'),
  quantity: integer('quantity').notNull().default(1),
  currentPeriodEnd: timestamp('current_period_end', { withTimezone: true }),
  ...versionColumns(),
});

module.exports = { billingCustomers, billingSubscriptions };
