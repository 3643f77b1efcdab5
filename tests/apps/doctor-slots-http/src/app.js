'use strict';
// app.js: a doctor-appointment API on node:http + node-postgres. Seat counting, payment holds,
// their expiry and idempotent retries are slotguard's job (slotguard.reserve / confirm / cancel,
// and slotguardd's expiry sweep); this file only routes HTTP to those calls.
const http = require('node:http');
const { Pool } = require('pg');

// slotguard's status -> the original app's names.
const STATUS = { pending: 'PENDING', confirmed: 'CONFIRMED', expired: 'FAILED', cancelled: 'CANCELLED' };

// SQLSTATE -> HTTP status and message (docs/errors.md).
const ERRORS = {
  SG002: [404, 'not found'],
  SG003: [409, 'sold out'],
  SG004: [410, 'payment window passed'],
  SG005: [409, 'booking cannot change to that state'],
  22023: [400, 'invalid parameter'],
  '22P02': [400, 'invalid parameter'],
  '22007': [400, 'invalid date'],
  '22008': [400, 'invalid date'],
};

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function bookingJson(b) {
  // Expiry is lazy: a pending hold is dead once expires_at passes, even before the sweep marks it;
  // slotguard.booking() already reports such a hold as 'expired'.
  return {
    id: Number(b.id),
    slotId: Number(b.slot_id),
    patient: b.holder,
    seats: b.seats,
    status: STATUS[b.status],
    idempotencyKey: b.idempotency_key,
    createdAt: b.created_at,
    expiresAt: b.expires_at,
    confirmedAt: b.confirmed_at,
  };
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => {
      body += c;
      if (body.length > 65536) reject(new HttpError(413, 'body too large'));
    });
    req.on('end', () => {
      try {
        resolve(body ? JSON.parse(body) : {});
      } catch {
        reject(new HttpError(400, 'malformed JSON'));
      }
    });
    req.on('error', reject);
  });
}

function makeRoutes(pool) {
  return [
    ['POST', /^\/doctors$/, async (_, body) => {
      if (typeof body.name !== 'string' || !body.name) throw new HttpError(400, 'name is required');
      const { rows: [d] } = await pool.query(
        'INSERT INTO doctors (name, specialization) VALUES ($1, $2) RETURNING id, name, specialization',
        [body.name, body.specialization ?? null]);
      return [201, { ...d, id: Number(d.id) }];
    }],

    // The slot and its link to the doctor commit together: one transaction on one pg client.
    ['POST', /^\/doctors\/(\d+)\/slots$/, async ([doctorId], body) => {
      if (!Number.isInteger(body.totalSeats)) throw new HttpError(400, 'totalSeats must be an integer');
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const doc = await client.query('SELECT 1 FROM doctors WHERE id = $1 FOR SHARE', [doctorId]);
        if (doc.rowCount === 0) throw new HttpError(404, `doctor ${doctorId} not found`);
        const { rows: [{ id }] } = await client.query(
          `SELECT slotguard.create_slot($1, $2, $3, resource => $4,
                    hold_ttl => make_interval(secs => $5)) AS id`, // NULL: the default, 2 minutes
          [body.totalSeats, body.startTime ?? null, body.endTime ?? null, `doctor:${doctorId}`,
            body.holdTtlSeconds ?? null]);
        await client.query('INSERT INTO doctor_slots (slot_id, doctor_id) VALUES ($1, $2)', [id, doctorId]);
        await client.query('COMMIT');
        return [201, { id: Number(id), doctorId: Number(doctorId), totalSeats: body.totalSeats }];
      } catch (e) {
        await client.query('ROLLBACK');
        throw e;
      } finally {
        client.release();
      }
    }],

    ['GET', /^\/slots\/(\d+)$/, async ([slotId]) => {
      const { rows: [s] } = await pool.query(
        `SELECT d.doctor_id, s.starts_at, s.ends_at, a.*
           FROM doctor_slots d JOIN slotguard.slots s ON s.id = d.slot_id,
                slotguard.availability(s.id) a
          WHERE d.slot_id = $1`, [slotId]);
      if (!s) throw new HttpError(404, `slot ${slotId} not found`);
      return [200, {
        id: Number(slotId), doctorId: Number(s.doctor_id), startTime: s.starts_at, endTime: s.ends_at,
        totalSeats: s.capacity, confirmed: s.confirmed, held: s.held, availableSeats: s.free,
      }];
    }],

    // A PENDING hold: one statement, no transaction, no lock of ours. A retry with the same
    // idempotencyKey returns the first booking.
    ['POST', /^\/slots\/(\d+)\/bookings$/, async ([slotId], body) => {
      if (typeof body.patient !== 'string' || !body.patient) throw new HttpError(400, 'patient is required');
      const { rows: [b] } = await pool.query(
        'SELECT * FROM slotguard.reserve($1, $2, idempotency_key => $3)',
        [slotId, body.patient, body.idempotencyKey ?? null]);
      return [201, bookingJson(b)];
    }],

    ['POST', /^\/bookings\/(\d+)\/pay$/, async ([bookingId]) => {
      const { rows: [b] } = await pool.query('SELECT * FROM slotguard.confirm($1)', [bookingId]);
      return [200, bookingJson(b)];
    }],

    ['POST', /^\/bookings\/(\d+)\/cancel$/, async ([bookingId]) => {
      const { rows: [b] } = await pool.query('SELECT * FROM slotguard.cancel($1)', [bookingId]);
      return [200, bookingJson(b)];
    }],

    // slotguard.booking(): one booking as it stands now (SG002 → 404 when there is none).
    ['GET', /^\/bookings\/(\d+)$/, async ([bookingId]) => {
      const { rows: [b] } = await pool.query('SELECT * FROM slotguard.booking($1)', [bookingId]);
      return [200, bookingJson(b)];
    }],
  ];
}

// createServer({ pool }): the HTTP server (not yet listening).
function createServer({ pool }) {
  const routes = makeRoutes(pool);
  return http.createServer(async (req, res) => {
    let status;
    let payload;
    try {
      const path = new URL(req.url, 'http://x').pathname;
      const hits = routes.filter(([, re]) => re.test(path));
      const route = hits.find(([method]) => method === req.method);
      if (!route) throw new HttpError(hits.length ? 405 : 404, hits.length ? 'method not allowed' : 'no such route');
      const body = req.method === 'POST' ? await readJson(req) : {};
      [status, payload] = await route[2](route[1].exec(path).slice(1), body);
    } catch (e) {
      const mapped = ERRORS[e.code];
      if (e instanceof HttpError) [status, payload] = [e.status, { error: e.message }];
      else if (mapped) [status, payload] = [mapped[0], { error: mapped[1], code: e.code, message: e.message, detail: e.detail }];
      else {
        console.error(e);
        [status, payload] = [500, { error: 'internal error' }];
      }
    }
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(payload));
  });
}

// A pool of 10 connections: a burst of 100 buyers queues here, not in PostgreSQL.
function createPool() {
  return new Pool({ max: Number(process.env.PG_POOL_SIZE || 10) });
}

module.exports = { createServer, createPool, STATUS };

if (require.main === module) {
  const pool = createPool();
  createServer({ pool }).listen(Number(process.env.PORT || 3000), function () {
    console.log(`doctor-slots-http listening on :${this.address().port}`);
  });
}
