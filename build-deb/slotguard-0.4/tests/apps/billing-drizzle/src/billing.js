'use strict';
// The billing data layer: versioned updates, retry on conflict, soft delete. The version check
// itself lives in the database (slotguard); this file only calls it and maps its errors.
const { Pool } = require('pg');
const { drizzle } = require('drizzle-orm/node-postgres');
const { sql, eq, and, isNull, getTableName, getTableColumns } = require('drizzle-orm');
const schema = require('./schema');
const { billingCustomers } = schema;
const { OptimisticLockError, NotFoundError, mapDbError } = require('./errors');

// connect(): a Drizzle database on a pg pool (PGHOST, PGPORT, PGUSER, PGDATABASE from the env).
function connect({ max = 12 } = {}) {
  const pool = new Pool({ max });
  return { db: drizzle(pool, { schema }), pool };
}

const entityOf = (table) => getTableName(table).replace(/^billing_/, '').replace(/s$/, '');

// Drizzle's property names (balanceCents) → column names (balance_cents), and back.
function toColumns(table, changes) {
  const cols = getTableColumns(table);
  const out = {};
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) continue;
    if (!cols[k]) throw new Error(`${getTableName(table)} has no field ${k}`);
    out[cols[k].name] = v instanceof Date ? v.toISOString() : v;
  }
  return out;
}
function fromRow(table, row) {
  const out = {};
  for (const [k, col] of Object.entries(getTableColumns(table))) {
    const v = row[col.name];
    out[k] = v == null ? v : col.mapFromDriverValue(v);
  }
  return out;
}

// updateWithVersion: one slotguard.update_versioned call. Stale version → OptimisticLockError;
// missing or soft-deleted row → NotFoundError. Returns the new row (with its new UUID version).
async function updateWithVersion(db, table, id, expectedVersion, changes) {
  try {
    const res = await db.execute(sql`SELECT slotguard.update_versioned(
        ${getTableName(table)}::regclass, ${JSON.stringify(id)}::jsonb,
        ${expectedVersion}::uuid, ${JSON.stringify(toColumns(table, changes))}::jsonb) AS row`);
    return fromRow(table, res.rows[0].row);
  } catch (err) {
    throw mapDbError(err, entityOf(table), id, expectedVersion);
  }
}

// updateWithVersionOrm: the same contract as a plain Drizzle update. Setting `version` to the
// version we read is the assertion; slotguard's trigger raises SG001 if it is not the row's.
async function updateWithVersionOrm(db, table, id, expectedVersion, changes) {
  let rows;
  try {
    rows = await db.update(table)
      .set({ ...changes, version: expectedVersion })
      .where(and(eq(table.id, id), isNull(table.deletedAt)))
      .returning();
  } catch (err) {
    throw mapDbError(err, entityOf(table), id, expectedVersion);
  }
  if (rows.length === 0) throw new NotFoundError(entityOf(table), id);
  return rows[0];
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// withVersionRetry(fn): run fn(attempt) (it must re-read and re-apply) until it does not hit an
// OptimisticLockError; exponential backoff with full jitter between attempts.
async function withVersionRetry(fn, { maxAttempts = 5, baseDelayMs = 10, maxDelayMs = 250, onRetry } = {}) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!(err instanceof OptimisticLockError) || attempt >= maxAttempts) throw err;
      onRetry?.(err, attempt);
      await sleep(Math.random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1)));
    }
  }
}

async function findById(db, table, id) {
  const [row] = await db.select().from(table).where(and(eq(table.id, id), isNull(table.deletedAt)));
  if (!row) throw new NotFoundError(entityOf(table), id);
  return row;
}

async function createCustomer(db, values) {
  const [row] = await db.insert(billingCustomers).values(values).returning();
  return row;
}

// addCredit: read-modify-write of the balance, safe under concurrency thanks to the version check.
function addCredit(db, customerId, cents, { update = updateWithVersion, retry = {}, afterRead } = {}) {
  return withVersionRetry(async (attempt) => {
    const c = await findById(db, billingCustomers, customerId);
    if (afterRead) await afterRead(attempt);
    return update(db, billingCustomers, customerId, c.version, { balanceCents: c.balanceCents + cents });
  }, { maxAttempts: 20, baseDelayMs: 5, ...retry });
}

// softDelete: set deleted_at through a versioned update; afterwards the row counts as not found.
function softDelete(db, table, id, expectedVersion) {
  return updateWithVersion(db, table, id, expectedVersion, { deletedAt: new Date() });
}

module.exports = {
  connect, updateWithVersion, updateWithVersionOrm, withVersionRetry, findById, createCustomer,
  addCredit, softDelete, OptimisticLockError, NotFoundError,
};
