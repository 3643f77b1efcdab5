'use strict';
// Dispensing a prescription (several medicines, all or nothing), two ways: one pg transaction,
// and one JSON-RPC batch of update_versioned over slotguardd's socket.
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const clinic = require('../src/clinic');
const { newPool, newSocketClient, auditOf, addMedicines } = require('./helpers');

const pool = newPool(20);
const sg = newSocketClient();
after(async () => {
  sg.close();
  await pool.end();
});

// A prescription of { medicine row: qty }, at the versions and stocks just read.
async function prescribe(meds, qtys) {
  const now = await clinic.readMedicines(pool, meds.map((m) => m.id));
  return now.map((m, i) => ({ medicineId: m.id, qty: qtys[i], version: m.version, stock: m.stock }));
}
const stocksOf = async (meds) => (await clinic.readMedicines(pool, meds.map((m) => m.id))).map((m) => m.stock);
const auditCount = async (meds) =>
  (await Promise.all(meds.map((m) => auditOf(pool, 'medicines', m.id)))).reduce((n, a) => n + a.length, 0);

const paths = {
  sql: (items, who) => clinic.dispenseSql(pool, items, who),
  socket: (items, who) => clinic.dispenseSocket(sg, items, who),
};

for (const [path, dispense] of Object.entries(paths)) {
  test(`${path}: a prescription deducts every medicine, audited with the pharmacist`, async () => {
    const meds = await addMedicines(pool, { amoxicillin: 10, ibuprofen: 30, omeprazole: 5 });
    const res = await dispense(await prescribe(meds, [2, 6, 5]), `pharm:${path}`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.medicines.map((m) => [m.stock, m.version]), [[8, 1], [24, 1], [0, 1]]);
    assert.deepEqual(await stocksOf(meds), [8, 24, 0]);
    const expected = [[10, 8], [30, 24], [5, 0]];
    for (const [i, m] of meds.entries()) {
      const audit = await auditOf(pool, 'medicines', m.id);
      assert.deepEqual(audit.map((r) => r.op), ['INSERT', 'UPDATE']);
      const u = audit[1];
      assert.equal(u.actor, `pharm:${path}`);
      assert.equal(u.actor_role, 'pharmacist');
      assert.equal(u.old_version, '0');
      assert.equal(u.new_version, '1');
      assert.deepEqual(u.changes.stock, expected[i]);
      assert.deepEqual(u.changes.version, [0, 1]);
    }
  });

  test(`${path}: one stale medicine leaves ALL stocks unchanged (409 with current version)`, async () => {
    const meds = await addMedicines(pool, { paracetamol: 50, cetirizine: 20, insulin: 8 });
    const items = await prescribe(meds, [5, 2, 1]);
    // Someone restocks insulin after the pharmacist read it.
    await clinic.inTransaction(pool, 'pharm:restock', 'pharmacist', (c) =>
      c.query('UPDATE medicines SET stock = stock + 10 WHERE id = $1', [meds[2].id]));
    const before = await auditCount(meds);
    const res = await dispense(items, `pharm:${path}`);
    assert.equal(res.status, 409);
    assert.equal(res.error, 'version_conflict');
    assert.equal(res.currentVersion, 1);
    assert.deepEqual(await stocksOf(meds), [50, 20, 18]);
    assert.equal(await auditCount(meds), before, 'a rolled-back prescription leaves no audit rows');
  });

  test(`${path}: one insufficient medicine leaves ALL stocks unchanged (CHECK stock >= 0)`, async () => {
    const meds = await addMedicines(pool, { metformin: 40, atorvastatin: 3, salbutamol: 9 });
    const before = await auditCount(meds);
    const res = await dispense(await prescribe(meds, [10, 4, 1]), `pharm:${path}`);
    assert.equal(res.status, 409);
    assert.equal(res.error, 'insufficient_stock');
    assert.equal(res.constraint, 'medicines_stock_check');
    assert.deepEqual(await stocksOf(meds), [40, 3, 9]);
    assert.equal(await auditCount(meds), before);
  });

  test(`${path}: an unknown medicine is a 404 and nothing is deducted`, async () => {
    const meds = await addMedicines(pool, { loratadine: 12 });
    const items = [...(await prescribe(meds, [2])),
      { medicineId: 987654, qty: 1, version: 0, stock: 5 }];
    assert.equal((await dispense(items, `pharm:${path}`)).status, 404);
    assert.deepEqual(await stocksOf(meds), [12]);
  });

  test(`${path}: 16 concurrent dispensers racing for limited stock never oversell or lose an update`, async () => {
    const [scarce, plenty] = await addMedicines(pool, { oseltamivir: 5, zinc: 20 });
    const workers = 16;
    const clients = path === 'socket' ? Array.from({ length: workers }, newSocketClient) : [];
    const run = path === 'socket'
      ? (w, items, who) => clinic.dispenseSocket(clients[w], items, who)
      : (w, items, who) => clinic.dispenseSql(pool, items, who);
    const outcome = await Promise.all(Array.from({ length: workers }, async (_, w) => {
      for (let attempt = 0; attempt < 100; attempt++) {
        const res = await run(w, await prescribe([scarce, plenty], [1, 2]), `pharm:w${w}`);
        if (res.status === 200) return 'dispensed';
        if (res.error === 'insufficient_stock') return 'out_of_stock';
        assert.equal(res.error, 'version_conflict'); // someone else won: reload and retry
        assert.ok(res.currentVersion >= 1);
      }
      return 'gave_up';
    }));
    clients.forEach((c) => c.close());

    const winners = outcome.map((o, w) => (o === 'dispensed' ? `pharm:w${w}` : null)).filter(Boolean);
    assert.equal(winners.length, 5);
    assert.equal(outcome.filter((o) => o === 'out_of_stock').length, workers - 5);
    assert.deepEqual(await stocksOf([scarce, plenty]), [0, 10]);

    // The audit trail is one unbroken chain: versions 0→1→...→5, stock 5→4→...→0, one row per
    // winner (a lost update would show as a gap or a repeated version).
    for (const [med, per, start] of [[scarce, 1, 5], [plenty, 2, 20]]) {
      const updates = (await auditOf(pool, 'medicines', med.id)).filter((r) => r.op === 'UPDATE');
      assert.deepEqual(updates.map((r) => [r.old_version, r.new_version]),
        [0, 1, 2, 3, 4].map((v) => [String(v), String(v + 1)]));
      assert.deepEqual(updates.map((r) => r.changes.stock),
        [0, 1, 2, 3, 4].map((k) => [start - k * per, start - (k + 1) * per]));
      assert.deepEqual(updates.map((r) => r.actor).sort(), [...winners].sort());
    }
  });
}
