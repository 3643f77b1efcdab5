'use strict';
// The app's HTTP server on port 0, its pg Pool (10 connections) on the test database, and
// slotguardd (started by test.sh) doing the expiry sweep.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { Client } = require('pg');
const { createServer, createPool } = require('../src/app');

let server;
let pool;
let db; // the test's own connection, to look at slotguard's tables directly
let port;

function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({ host: '127.0.0.1', port, method, path,
      headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {} },
    (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function newSlot(totalSeats, extra = {}) {
  const doc = await request('POST', '/doctors', { name: 'Dr. Lee', specialization: 'Cardiology' });
  assert.equal(doc.status, 201);
  const slot = await request('POST', `/doctors/${doc.body.id}/slots`, {
    startTime: '2030-01-10T09:00:00Z', endTime: '2030-01-10T09:30:00Z', totalSeats, ...extra });
  assert.equal(slot.status, 201, JSON.stringify(slot.body));
  return slot.body.id;
}

before(async () => {
  assert.ok(process.env.PGDATABASE, 'PGDATABASE must name the test database');
  pool = createPool();
  assert.equal(pool.options.max, 10);
  server = createServer({ pool });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  port = server.address().port;
  db = new Client();
  await db.connect();
});

after(async () => {
  await new Promise((r) => server.close(r));
  await pool.end();
  await db.end();
});

test('a slot shows its seats; bad input and unknown ids map to 400/404', async () => {
  const slotId = await newSlot(3);
  const got = await request('GET', `/slots/${slotId}`);
  assert.equal(got.status, 200);
  assert.deepEqual([got.body.totalSeats, got.body.confirmed, got.body.held, got.body.availableSeats], [3, 0, 0, 3]);

  const doc = await request('POST', '/doctors', { name: 'Dr. Ng' });
  const backwards = await request('POST', `/doctors/${doc.body.id}/slots`, {
    startTime: '2030-01-10T10:00:00Z', endTime: '2030-01-10T09:00:00Z', totalSeats: 2 });
  assert.equal(backwards.status, 400, JSON.stringify(backwards.body)); // 22023 from create_slot
  assert.equal(backwards.body.code, '22023');
  assert.equal((await request('POST', '/doctors/999999/slots', { totalSeats: 2 })).status, 404);

  const noSlot = await request('POST', '/slots/999999/bookings', { patient: 'p' });
  assert.equal(noSlot.status, 404); // SG002 from reserve
  assert.equal(noSlot.body.code, 'SG002');
  const noBooking = await request('POST', '/bookings/999999/pay');
  assert.equal(noBooking.status, 404);
  assert.equal(noBooking.body.code, 'SG002');
  assert.equal((await request('GET', '/bookings/999999')).status, 404);
});

test('100 concurrent clients book-and-pay a 5-seat slot: exactly 5 CONFIRMED, 95 sold out', async () => {
  const slotId = await newSlot(5);
  const outcomes = await Promise.all(Array.from({ length: 100 }, async (_, i) => {
    const booked = await request('POST', `/slots/${slotId}/bookings`,
      { patient: `patient-${i}`, idempotencyKey: `rush-${i}` });
    if (booked.status !== 201) return booked;
    assert.equal(booked.body.status, 'PENDING');
    return request('POST', `/bookings/${booked.body.id}/pay`);
  }));

  const confirmed = outcomes.filter((o) => o.status === 200);
  const soldOut = outcomes.filter((o) => o.status === 409);
  assert.equal(confirmed.length, 5, JSON.stringify(outcomes.filter((o) => o.status !== 409)));
  assert.equal(soldOut.length, 95);
  assert.ok(confirmed.every((o) => o.body.status === 'CONFIRMED'));
  assert.ok(soldOut.every((o) => o.body.error === 'sold out' && o.body.code === 'SG003'));
  assert.equal(new Set(confirmed.map((o) => o.body.id)).size, 5);

  // The database's own view, not the app's.
  const { rows: [a] } = await db.query('SELECT * FROM slotguard.availability($1)', [slotId]);
  assert.deepEqual(a, { capacity: 5, confirmed: 5, held: 0, free: 0 });
  const { rows: [c] } = await db.query(
    `SELECT count(*) FILTER (WHERE status = 'confirmed')::int AS confirmed,
            coalesce(sum(seats) FILTER (WHERE status IN ('confirmed', 'pending')), 0)::int AS live_seats
       FROM slotguard.bookings WHERE slot_id = $1`, [slotId]);
  assert.deepEqual(c, { confirmed: 5, live_seats: 5 });

  const shown = await request('GET', `/slots/${slotId}`);
  assert.equal(shown.body.availableSeats, 0);
  assert.equal(shown.body.confirmed, 5);
});

test('retrying with the same idempotencyKey returns the same booking', async () => {
  const slotId = await newSlot(2);
  const [first, again] = await Promise.all([
    request('POST', `/slots/${slotId}/bookings`, { patient: 'ann', idempotencyKey: 'ann-retry-1' }),
    request('POST', `/slots/${slotId}/bookings`, { patient: 'ann', idempotencyKey: 'ann-retry-1' }),
  ]);
  assert.equal(first.status, 201);
  assert.equal(again.status, 201);
  assert.equal(again.body.id, first.body.id);
  const third = await request('POST', `/slots/${slotId}/bookings`, { patient: 'ann', idempotencyKey: 'ann-retry-1' });
  assert.equal(third.body.id, first.body.id);

  const { rows: [n] } = await db.query('SELECT count(*)::int AS n FROM slotguard.bookings WHERE slot_id = $1', [slotId]);
  assert.equal(n.n, 1);
  const slot = await request('GET', `/slots/${slotId}`);
  assert.equal(slot.body.held, 1);
  assert.equal(slot.body.availableSeats, 1);

  // Paying twice is also harmless.
  assert.equal((await request('POST', `/bookings/${first.body.id}/pay`)).body.status, 'CONFIRMED');
  assert.equal((await request('POST', `/bookings/${first.body.id}/pay`)).body.status, 'CONFIRMED');
});

test('an unpaid hold is swept to FAILED by slotguardd; paying it later is 410; its seat is free again', async () => {
  const slotId = await newSlot(1, { holdTtlSeconds: 1 });
  const held = await request('POST', `/slots/${slotId}/bookings`, { patient: 'bob', idempotencyKey: 'bob-1' });
  assert.equal(held.status, 201);
  assert.equal(held.body.status, 'PENDING');
  const other = await request('POST', `/slots/${slotId}/bookings`, { patient: 'cy' });
  assert.equal(other.status, 409); // the only seat is held

  // Only slotguardd writes 'expired': the app has no timer, and a plain SELECT expires nothing.
  const t0 = Date.now();
  let status;
  while (Date.now() - t0 < 6000) {
    ({ rows: [{ status }] } = await db.query('SELECT status FROM slotguard.bookings WHERE id = $1', [held.body.id]));
    if (status === 'expired') break;
    await sleep(100);
  }
  assert.equal(status, 'expired', 'the sweep did not mark the hold expired within 6 s');

  assert.equal((await request('GET', `/bookings/${held.body.id}`)).body.status, 'FAILED');
  const late = await request('POST', `/bookings/${held.body.id}/pay`);
  assert.equal(late.status, 410);
  assert.equal(late.body.error, 'payment window passed');
  assert.equal(late.body.code, 'SG004');

  const slot = await request('GET', `/slots/${slotId}`);
  assert.deepEqual([slot.body.confirmed, slot.body.held, slot.body.availableSeats], [0, 0, 1]);
  const next = await request('POST', `/slots/${slotId}/bookings`, { patient: 'cy' });
  assert.equal(next.status, 201);
  assert.equal((await request('POST', `/bookings/${next.body.id}/pay`)).body.status, 'CONFIRMED');
  // The expired booking stays FAILED even though the seat was resold.
  assert.equal((await request('GET', `/bookings/${held.body.id}`)).body.status, 'FAILED');
});

test('cancel frees the seat; paying a cancelled booking is refused', async () => {
  const slotId = await newSlot(1);
  const b = await request('POST', `/slots/${slotId}/bookings`, { patient: 'dee' });
  const cancelled = await request('POST', `/bookings/${b.body.id}/cancel`);
  assert.equal(cancelled.body.status, 'CANCELLED');
  const pay = await request('POST', `/bookings/${b.body.id}/pay`);
  assert.equal(pay.status, 409);
  assert.equal(pay.body.code, 'SG005');
  assert.equal((await request('GET', `/slots/${slotId}`)).body.availableSeats, 1);
});
