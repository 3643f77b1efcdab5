'use strict';
// helpers.js: connections and fixtures for the tests (libpq env: PGHOST PGPORT PGUSER PGDATABASE).
const pg = require('pg');
const { SlotguardClient } = require('../../common/slotguard-rpc');

const newPool = (max = 10) => new pg.Pool({ max });

async function newClient() {
  const c = new pg.Client();
  await c.connect();
  return c;
}

const newSocketClient = () => new SlotguardClient(process.env.SLOTGUARD_SOCKET);

// slotguard.audit rows of one row (by id) of a table, oldest first.
async function auditOf(db, table, id) {
  const { rows } = await db.query(
    `SELECT actor, actor_role, op, old_version, new_version, changes FROM slotguard.audit
      WHERE tbl = $1 AND row_key = jsonb_build_object('id', $2::int) ORDER BY id`,
    [`public.${table}`, id]);
  return rows;
}

let seq = 0;
// Inserts medicines { name: stock } with names unique to this process; returns the rows in order.
async function addMedicines(db, stocks) {
  const out = [];
  for (const [name, stock] of Object.entries(stocks)) {
    const { rows } = await db.query(
      'INSERT INTO medicines (name, stock) VALUES ($1, $2) RETURNING *',
      [`${name}-${process.pid}-${++seq}`, stock]);
    out.push(rows[0]);
  }
  return out;
}

// Waits until backend `pid` is blocked on a lock.
async function waitUntilBlocked(db, pid) {
  for (let i = 0; i < 200; i++) {
    const { rows } = await db.query(
      "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'", [pid]);
    if (rows.length) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`backend ${pid} never blocked`);
}

module.exports = { newPool, newClient, newSocketClient, auditOf, addMedicines, waitUntilBlocked };
