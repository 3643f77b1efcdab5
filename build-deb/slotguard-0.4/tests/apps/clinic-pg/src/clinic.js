'use strict';
// clinic.js: appointment approval and prescription dispensing on slotguard.
// Every function returns an HTTP-like result ({status: 200, ...} / 404 / 409) instead of
// throwing on business errors; the concurrency checks are all slotguard's.
const pg = require('pg');
const { SlotguardError } = require('../../common/slotguard-rpc');

// bigint versions as numbers (they stay far below 2^53), as update_versioned's jsonb has them.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

// slotguard's SG001 DETAIL: 'Table public.x, key {"id": 7}: expected version 5, current version 6.'
function currentVersionFrom(detail) {
  const m = /current version ([0-9a-f-]+)\.?$/.exec(detail || '');
  if (!m) return null;
  return /^\d+$/.test(m[1]) ? Number(m[1]) : m[1];
}

// Maps a database (pg) or daemon (SlotguardError) error to an HTTP-like result; rethrows others.
function toHttp(err) {
  const sqlstate = err instanceof SlotguardError ? err.sqlstate : err.code;
  switch (sqlstate) {
    case 'SG001':
      // The daemon hands the versions over as fields; from pg, read them from the fixed DETAIL.
      return { status: 409, error: 'version_conflict',
        currentVersion: err instanceof SlotguardError ? err.data.current_version : currentVersionFrom(err.detail),
        message: 'Modified by someone else; reload and try again.' };
    case 'SG002':
      return { status: 404, error: 'not_found' };
    case '23514': // CHECK (stock >= 0): pg names the constraint in err.constraint, the daemon in data
      return { status: 409, error: 'insufficient_stock', message: err.detail || err.message,
        constraint: err instanceof SlotguardError ? err.data.constraint : err.constraint };
    default:
      throw err;
  }
}

// Runs fn(client) in one transaction with the request's actor set for slotguard.audit.
// db is a pg.Pool (a connection is taken for the transaction) or a connected pg.Client.
async function inTransaction(db, actor, actorRole, fn) {
  const client = db instanceof pg.Pool ? await db.connect() : db;
  try {
    await client.query('BEGIN');
    await client.query(
      "SELECT set_config('slotguard.actor', $1, true), set_config('slotguard.actor_role', $2, true)",
      [actor, actorRole]);
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    if (client !== db) client.release();
  }
}

async function createAppointment(db, { patient, doctor, startsAt, reason }, actor) {
  return inTransaction(db, actor, 'patient', async (c) => {
    const { rows } = await c.query(
      'INSERT INTO appointments (patient, doctor, starts_at, reason) VALUES ($1, $2, $3, $4) RETURNING *',
      [patient, doctor, startsAt, reason]);
    return { status: 201, appointment: rows[0] };
  });
}

async function getAppointment(db, id) {
  const { rows } = await db.query('SELECT * FROM appointments WHERE id = $1', [id]);
  return rows[0] ? { status: 200, appointment: rows[0] } : { status: 404, error: 'not_found' };
}

// Approve with plain SQL: asserting the version read is all it takes, the trigger checks it.
async function approveAppointment(db, id, version, staff) {
  try {
    return await inTransaction(db, staff, 'staff', async (c) => {
      const { rows } = await c.query(
        'UPDATE appointments SET status = $1, decided_by = $2, version = $3 WHERE id = $4 RETURNING *',
        ['approved', staff, version, id]);
      return rows[0] ? { status: 200, appointment: rows[0] } : { status: 404, error: 'not_found' };
    });
  } catch (err) {
    return toHttp(err);
  }
}

// Reject with slotguard.update_versioned: SG001 when stale, SG002 when there is no such row.
async function rejectAppointment(db, id, version, staff) {
  try {
    return await inTransaction(db, staff, 'staff', async (c) => {
      const { rows } = await c.query(
        'SELECT slotguard.update_versioned($1::regclass, $2::jsonb, $3::bigint, $4::jsonb) AS row',
        ['appointments', JSON.stringify(id), version, { status: 'rejected', decided_by: staff }]);
      return { status: 200, appointment: rows[0].row };
    });
  } catch (err) {
    return toHttp(err);
  }
}

// A prescription: [{ medicineId, qty, version, stock }] with the version (and stock) the
// pharmacist read. All medicines are deducted, or none.

// (1) In one pg transaction: relative deductions, each asserting the version read.
async function dispenseSql(db, items, pharmacist) {
  try {
    return await inTransaction(db, pharmacist, 'pharmacist', async (c) => {
      const medicines = [];
      for (const { medicineId, qty, version } of items) {
        const { rows } = await c.query(
          'UPDATE medicines SET stock = stock - $1, version = $2 WHERE id = $3 RETURNING *',
          [qty, version, medicineId]);
        if (!rows[0]) throw Object.assign(new Error(`medicine ${medicineId} not found`), { code: 'SG002' });
        medicines.push(rows[0]);
      }
      return { status: 200, medicines };
    });
  } catch (err) {
    return toHttp(err);
  }
}

// (2) In one JSON-RPC batch over slotguardd's socket (one transaction, all or nothing).
async function dispenseSocket(sg, items, pharmacist) {
  try {
    const medicines = await sg.batch(items.map(({ medicineId, qty, version, stock }) => [
      'update_versioned',
      { tbl: 'medicines', key: medicineId, expected_version: version,
        changes: { stock: stock - qty }, actor: pharmacist, actor_role: 'pharmacist' },
    ]));
    return { status: 200, medicines };
  } catch (err) {
    return toHttp(err);
  }
}

async function readMedicines(db, ids) {
  const { rows } = await db.query('SELECT * FROM medicines WHERE id = ANY($1) ORDER BY id', [ids]);
  return rows;
}

module.exports = {
  currentVersionFrom, toHttp, inTransaction, createAppointment, getAppointment,
  approveAppointment, rejectAppointment, dispenseSql, dispenseSocket, readMedicines,
};
