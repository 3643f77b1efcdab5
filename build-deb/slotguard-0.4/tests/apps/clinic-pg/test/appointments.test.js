'use strict';
// Appointment approval/rejection with optimistic versions checked by slotguard's trigger.
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const clinic = require('../src/clinic');
const { newPool, newClient, auditOf, waitUntilBlocked } = require('./helpers');

const pool = newPool();
after(() => pool.end());

const book = async (patient = 'pat:1') =>
  (await clinic.createAppointment(pool, {
    patient, doctor: 'dr:house', startsAt: '2030-01-07T10:00:00Z', reason: 'checkup',
  }, patient)).appointment;

test('approve at the version read: 200, version bumped, audited with the staff actor', async () => {
  const a = await book('pat:alice');
  assert.equal(a.version, 0);
  const res = await clinic.approveAppointment(pool, a.id, 0, 'staff:ann');
  assert.equal(res.status, 200);
  assert.equal(res.appointment.status, 'approved');
  assert.equal(res.appointment.version, 1);

  const audit = await auditOf(pool, 'appointments', a.id);
  assert.equal(audit.length, 2);
  assert.equal(audit[0].op, 'INSERT');
  assert.equal(audit[0].actor, 'pat:alice');
  assert.equal(audit[0].new_version, '0');
  assert.deepEqual(
    { ...audit[1], changes: { status: audit[1].changes.status, decided_by: audit[1].changes.decided_by } },
    { actor: 'staff:ann', actor_role: 'staff', op: 'UPDATE', old_version: '0', new_version: '1',
      changes: { status: ['pending', 'approved'], decided_by: [null, 'staff:ann'] } });
});

test('stale version: 409 with the current version, nothing written (both SQL styles)', async () => {
  const a = await book();
  assert.equal((await clinic.approveAppointment(pool, a.id, 0, 'staff:ann')).status, 200);
  for (const op of [clinic.rejectAppointment, clinic.approveAppointment]) {
    const res = await op(pool, a.id, 0, 'staff:bob');
    assert.equal(res.status, 409, op.name);
    assert.equal(res.error, 'version_conflict');
    assert.equal(res.currentVersion, 1);
  }
  const now = (await clinic.getAppointment(pool, a.id)).appointment;
  assert.equal(now.status, 'approved');
  assert.equal(now.decided_by, 'staff:ann');
  assert.equal(now.version, 1);
  assert.equal((await auditOf(pool, 'appointments', a.id)).length, 2); // INSERT + one UPDATE

  // Retrying with the current version the 409 gave works.
  const retry = await clinic.rejectAppointment(pool, a.id, 1, 'staff:bob');
  assert.equal(retry.status, 200);
  assert.equal(retry.appointment.version, 2);
});

test('unknown appointment: 404 (no row updated / SG002)', async () => {
  assert.equal((await clinic.approveAppointment(pool, 999999, 0, 'staff:ann')).status, 404);
  const res = await clinic.rejectAppointment(pool, 999999, 0, 'staff:ann');
  assert.deepEqual(res, { status: 404, error: 'not_found' });
});

test('a writer that waited for the winner re-checks and gets 409 (two pg connections)', async () => {
  const a = await book();
  const [ann, bob] = [await newClient(), await newClient()];
  try {
    const bobPid = (await bob.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    let bobResult;
    // Ann's approval holds the row in an open transaction while Bob's rejection (same version
    // 0) blocks on it; Ann commits, Bob's UPDATE re-checks the committed row.
    await clinic.inTransaction(ann, 'staff:ann', 'staff', async (c) => {
      await c.query("UPDATE appointments SET status = 'approved', version = 0 WHERE id = $1", [a.id]);
      bobResult = clinic.rejectAppointment(bob, a.id, 0, 'staff:bob');
      await waitUntilBlocked(pool, bobPid);
    });
    const res = await bobResult;
    assert.equal(res.status, 409);
    assert.equal(res.currentVersion, 1);
    assert.equal((await clinic.getAppointment(pool, a.id)).appointment.status, 'approved');
  } finally {
    await ann.end();
    await bob.end();
  }
});

test('approve and reject racing at the same version: exactly one wins, every time', async () => {
  const [ann, bob] = [await newClient(), await newClient()];
  try {
    for (let i = 0; i < 25; i++) {
      const a = await book(`pat:${i}`);
      const [approve, reject] = await Promise.all([
        clinic.approveAppointment(ann, a.id, 0, 'staff:ann'),
        clinic.rejectAppointment(bob, a.id, 0, 'staff:bob'),
      ]);
      const statuses = [approve.status, reject.status].sort();
      assert.deepEqual(statuses, [200, 409], `round ${i}`);
      const [winner, loser] = approve.status === 200 ? [approve, reject] : [reject, approve];
      assert.equal(loser.currentVersion, 1);
      const now = (await clinic.getAppointment(pool, a.id)).appointment;
      assert.equal(now.status, winner.appointment.status);
      assert.equal(now.version, 1);
      const updates = (await auditOf(pool, 'appointments', a.id)).filter((r) => r.op === 'UPDATE');
      assert.equal(updates.length, 1);
      assert.equal(updates[0].actor, winner.appointment.decided_by);
    }
  } finally {
    await ann.end();
    await bob.end();
  }
});
