'use strict';
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { randomUUID } = require('node:crypto');
const { eq } = require('drizzle-orm');
const { DrizzleQueryError } = require('drizzle-orm/errors');
const app = require('../src/billing');
const { billingCustomers, billingSubscriptions } = require('../src/schema');
const { sqlstateError } = require('../src/errors');

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
let db, pool;
before(() => ({ db, pool } = app.connect()));
after(() => pool.end());

const newCustomer = (extra = {}) => app.createCustomer(db, {
  externalId: `ext-${randomUUID()}`, email: 'a@example.com', name: 'Original', ...extra,
});
const stored = async (id) => (await db.select().from(billingCustomers).where(eq(billingCustomers.id, id)))[0];

const variants = [
  ['update_versioned', app.updateWithVersion],
  ['plain Drizzle update', app.updateWithVersionOrm],
];

for (const [name, update] of variants) {
  describe(`updateWithVersion via ${name}`, () => {
    test('success returns the row with a new UUID version', async () => {
      const c = await newCustomer();
      const u = await update(db, billingCustomers, c.id, c.version, { name: 'Renamed', email: 'b@example.com' });
      assert.match(u.version, UUID);
      assert.notEqual(u.version, c.version);
      assert.equal(u.name, 'Renamed');
      assert.equal(u.email, 'b@example.com');
      assert.ok(u.updatedAt instanceof Date && u.updatedAt >= c.updatedAt);
      assert.equal(u.createdAt.getTime(), c.createdAt.getTime());
      const s = await stored(c.id);
      assert.equal(s.version, u.version);
      assert.equal(s.name, 'Renamed');
    });

    test('a stale version → OptimisticLockError with expected and current version', async () => {
      const c = await newCustomer();
      const first = await update(db, billingCustomers, c.id, c.version, { name: 'Process A' });
      await assert.rejects(update(db, billingCustomers, c.id, c.version, { name: 'Process B' }), (err) => {
        assert.ok(err instanceof app.OptimisticLockError, err.stack);
        assert.equal(err.entityType, 'customer');
        assert.equal(err.entityId, c.id);
        assert.equal(err.expectedVersion, c.version);
        assert.equal(err.currentVersion, first.version);
        assert.equal(sqlstateError(err.cause).code, 'SG001');
        return true;
      });
      const s = await stored(c.id);
      assert.equal(s.name, 'Process A');
      assert.equal(s.version, first.version);
    });

    test('a made-up UUID version is refused and nothing is written', async () => {
      const c = await newCustomer({ balanceCents: 500 });
      const madeUp = randomUUID();
      await assert.rejects(update(db, billingCustomers, c.id, madeUp, { balanceCents: 1_000_000 }), (err) => {
        assert.ok(err instanceof app.OptimisticLockError, err.stack);
        assert.equal(err.expectedVersion, madeUp);
        assert.equal(err.currentVersion, c.version);
        return true;
      });
      const s = await stored(c.id);
      assert.equal(s.balanceCents, 500);
      assert.equal(s.version, c.version);
    });

    test('a missing id → NotFoundError', async () => {
      await assert.rejects(update(db, billingCustomers, randomUUID(), randomUUID(), { name: 'x' }),
        app.NotFoundError);
    });

    test('a soft-deleted row → NotFoundError, even with its current version', async () => {
      const c = await newCustomer();
      const del = await app.softDelete(db, billingCustomers, c.id, c.version);
      assert.ok(del.deletedAt instanceof Date);
      assert.notEqual(del.version, c.version);
      await assert.rejects(update(db, billingCustomers, c.id, del.version, { name: 'zombie' }), app.NotFoundError);
      await assert.rejects(app.findById(db, billingCustomers, c.id), app.NotFoundError);
      assert.equal((await stored(c.id)).name, 'Original');
    });

    test('subscriptions: versioned status change, stale writer refused', async () => {
      const c = await newCustomer();
      const [s] = await db.insert(billingSubscriptions)
        .values({ customerId: c.id, plan: 'pro', status: 'trialing' }).returning();
      const end = new Date('2030-01-31T00:00:00Z');
      const u = await update(db, billingSubscriptions, s.id, s.version, { status: 'active', currentPeriodEnd: end });
      assert.equal(u.status, 'active');
      assert.equal(u.currentPeriodEnd.getTime(), end.getTime());
      await assert.rejects(update(db, billingSubscriptions, s.id, s.version, { status: 'canceled' }), (err) => {
        assert.ok(err instanceof app.OptimisticLockError);
        assert.equal(err.entityType, 'subscription');
        assert.equal(err.currentVersion, u.version);
        return true;
      });
    });

    test('10 concurrent "add credit" writers: no lost update', async () => {
      const c = await newCustomer({ balanceCents: 1000 });
      const N = 10;
      // Barrier: every writer reads the same balance and version before anyone writes, so without
      // slotguard's check the final balance would be 1000 + 25, not 1000 + 250.
      let readers = 0, release;
      const allRead = new Promise((r) => (release = r));
      const afterRead = async (attempt) => {
        if (attempt !== 1) return;
        if (++readers === N) release();
        await allRead;
      };
      let retries = 0;
      const results = await Promise.all(Array.from({ length: N }, () => app.addCredit(db, c.id, 25, {
        update, afterRead, retry: { onRetry: () => retries++ },
      })));
      const s = await stored(c.id);
      assert.equal(s.balanceCents, 1000 + N * 25);
      assert.ok(retries >= N - 1, `expected at least ${N - 1} conflicts, saw ${retries}`);
      assert.equal(new Set(results.map((r) => r.version)).size, N, 'each write made a distinct version');
      assert.ok(results.some((r) => r.version === s.version));
    });
  });
}

describe('errors and retry', () => {
  test('drizzle-orm wraps the pg error (DrizzleQueryError.cause); the mapper finds SG001 under it', async () => {
    const c = await newCustomer();
    await assert.rejects(app.updateWithVersionOrm(db, billingCustomers, c.id, randomUUID(), { name: 'x' }), (err) => {
      assert.ok(err.cause instanceof DrizzleQueryError, 'pinned drizzle-orm wraps driver errors');
      assert.equal(err.cause.cause.code, 'SG001');
      assert.match(err.cause.cause.detail, /expected version .*, current version /);
      return true;
    });
  });

  test('an UPDATE that does not mention the version still bumps it, so stale holders are caught', async () => {
    const c = await newCustomer();
    await db.update(billingCustomers).set({ name: 'admin fix' }).where(eq(billingCustomers.id, c.id));
    const s = await stored(c.id);
    assert.notEqual(s.version, c.version);
    await assert.rejects(app.updateWithVersion(db, billingCustomers, c.id, c.version, { name: 'y' }),
      app.OptimisticLockError);
  });

  test('withVersionRetry re-reads and reapplies, gives up after maxAttempts, never retries NotFound', async () => {
    const c = await newCustomer();
    let calls = 0;
    const r = await app.withVersionRetry(async (attempt) => {
      calls++;
      const cur = await app.findById(db, billingCustomers, c.id);
      // the first attempt uses a version another writer already replaced
      const v = attempt === 1 ? (await app.updateWithVersion(db, billingCustomers, c.id, cur.version, { name: 'other' }), cur.version) : cur.version;
      return app.updateWithVersion(db, billingCustomers, c.id, v, { name: `${cur.name}+retry` });
    }, { maxAttempts: 3, baseDelayMs: 1 });
    assert.equal(calls, 2);
    assert.equal(r.name, 'other+retry');

    calls = 0;
    await assert.rejects(app.withVersionRetry(async () => {
      calls++;
      return app.updateWithVersion(db, billingCustomers, c.id, randomUUID(), { name: 'never' });
    }, { maxAttempts: 3, baseDelayMs: 1 }), app.OptimisticLockError);
    assert.equal(calls, 3);

    calls = 0;
    await assert.rejects(app.withVersionRetry(async () => {
      calls++;
      return app.updateWithVersion(db, billingCustomers, randomUUID(), randomUUID(), { name: 'never' });
    }, { maxAttempts: 3, baseDelayMs: 1 }), app.NotFoundError);
    assert.equal(calls, 1);
  });
});
