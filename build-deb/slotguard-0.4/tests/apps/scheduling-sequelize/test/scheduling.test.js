'use strict';
// Drives the app through Sequelize against a fresh database with slotguard (see ../test.sh).
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { OptimisticLockError, ExclusionConstraintError, DatabaseError, QueryTypes } = require('sequelize');
const { sequelize, Room, Instructor, Course, Section, ClassSession } = require('../src/models');
const { setupSchema } = require('../src/schema');
const {
  ScheduleConflictError, StaleVersionError, findConflicts, mapError, bookClass, moveClass,
} = require('../src/scheduling');

const db = {};
const one = async (sql, bind) => (await sequelize.query(sql, { bind, type: QueryTypes.SELECT }))[0];

before(async () => {
  await setupSchema();
  const [r101, r102, r103] = await Room.bulkCreate(
    [{ name: '101', seats: 40 }, { name: '102', seats: 30 }, { name: '103', seats: 60 }]);
  const [ada, grace, alan] = await Instructor.bulkCreate([
    { name: 'Ada Lovelace', email: 'ada@example.edu' },
    { name: 'Grace Hopper', email: 'grace@example.edu' },
    { name: 'Alan Turing', email: 'alan@example.edu' }]);
  const [cs, math] = await Course.bulkCreate(
    [{ code: 'CS101', title: 'Programming' }, { code: 'MATH200', title: 'Linear Algebra' }]);
  const [csA, csB, mathA] = await Section.bulkCreate([
    { course_id: cs.id, label: 'A' }, { course_id: cs.id, label: 'B' }, { course_id: math.id, label: 'A' }]);
  Object.assign(db, { r101, r102, r103, ada, grace, alan, cs, math, csA, csB, mathA });
});

after(() => sequelize.close());

test('setup: Sequelize tables are versioned (increment style) and the overlap rules exist', async () => {
  const v = await sequelize.query(
    'SELECT tbl::text AS tbl, version_column, timestamps, version_style FROM slotguard.versioned_tables ORDER BY 1',
    { type: QueryTypes.SELECT });
  assert.deepEqual(v.map((r) => r.tbl), ['class_sessions', 'courses', 'instructors', 'rooms', 'sections']);
  for (const r of v) assert.deepEqual([r.version_column, r.timestamps, r.version_style], ['version', true, 'increment']);
  const rules = await sequelize.query(
    "SELECT rule_name::text AS rule_name, key_columns::text AS k FROM slotguard.overlap_rules WHERE tbl = 'class_sessions'::regclass ORDER BY 1",
    { type: QueryTypes.SELECT });
  assert.deepEqual(rules, [
    { rule_name: 'instructor_busy', k: '{instructor_id,weekday}' },
    { rule_name: 'room_busy', k: '{room_id,weekday}' },
    { rule_name: 'section_busy', k: '{section_id,weekday}' }]);
});

test('a double booking answers in business words naming the clashing class', async () => {
  const mon = { weekday: 1 };
  const cs = await bookClass({ ...mon, section_id: db.csA.id, room_id: db.r101.id, instructor_id: db.ada.id, starts_at: '09:00', ends_at: '10:30' });
  assert.equal(cs.version, 0);

  // room: caught by the pre-check (find_conflicts)
  await assert.rejects(
    bookClass({ ...mon, section_id: db.mathA.id, room_id: db.r101.id, instructor_id: db.grace.id, starts_at: '10:00', ends_at: '11:00' }),
    (e) => e instanceof ScheduleConflictError && e.rule === 'room_busy' && e.conflicting.id === cs.id &&
      e.message === 'Room 101 is taken on Monday 09:00–10:30 by CS101 section A');

  // the same insert without the pre-check: the database refuses it (Sequelize's
  // ExclusionConstraintError wrapping the 23P01), and mapError says the same business words
  const raw = await ClassSession.create({ ...mon, section_id: db.mathA.id, room_id: db.r101.id, instructor_id: db.grace.id, starts_at: '10:00', ends_at: '11:00' })
    .then(() => assert.fail('overlapping insert went through'), (e) => e);
  assert.ok(raw instanceof ExclusionConstraintError);
  assert.equal(raw.parent.code, '23P01');
  assert.equal(raw.original, raw.parent);
  // slotguard fills the error's constraint/table fields, so Sequelize's own error names the rule
  assert.equal(raw.constraint, 'room_busy');
  assert.equal(raw.table, 'class_sessions');
  assert.equal(raw.parent.message, `room ${db.r101.id} is already booked on day 1 10:00:00-11:00:00`); // the rule's template
  assert.match(raw.parent.detail, new RegExp(`^Rule "room_busy": the row overlaps \\{"id": ${cs.id}\\} during`));
  const mapped = await mapError(raw);
  assert.ok(mapped instanceof ScheduleConflictError);
  assert.equal(mapped.message, 'Room 101 is taken on Monday 09:00–10:30 by CS101 section A');

  // instructor and section rules
  await assert.rejects(
    bookClass({ ...mon, section_id: db.mathA.id, room_id: db.r102.id, instructor_id: db.ada.id, starts_at: '10:00', ends_at: '11:00' }),
    { name: 'ScheduleConflictError', rule: 'instructor_busy', message: 'Ada Lovelace already teaches CS101 section A on Monday 09:00–10:30' });
  await assert.rejects(
    bookClass({ ...mon, section_id: db.csA.id, room_id: db.r102.id, instructor_id: db.grace.id, starts_at: '08:00', ends_at: '09:15' }),
    { name: 'ScheduleConflictError', rule: 'section_busy', message: 'CS101 section A already meets on Monday 09:00–10:30 in room 101' });

  // half-open periods: back to back in the same room is fine
  const next = await bookClass({ ...mon, section_id: db.mathA.id, room_id: db.r101.id, instructor_id: db.grace.id, starts_at: '10:30', ends_at: '12:00' });
  assert.ok(next.id);
  assert.equal(await ClassSession.count({ where: { weekday: 1 } }), 2);
});

test('a cancelled class frees its room (only_when)', async () => {
  const tue = { weekday: 2, room_id: db.r103.id, starts_at: '14:00', ends_at: '15:00' };
  const s = await bookClass({ ...tue, section_id: db.csB.id, instructor_id: db.alan.id });
  await assert.rejects(bookClass({ ...tue, section_id: db.mathA.id, instructor_id: db.grace.id }),
    { name: 'ScheduleConflictError', message: 'Room 103 is taken on Tuesday 14:00–15:00 by CS101 section B' });
  await s.update({ status: 'cancelled' });
  assert.equal(s.version, 1);
  const again = await bookClass({ ...tue, section_id: db.mathA.id, instructor_id: db.grace.id });
  assert.equal(again.status, 'active');
  // reactivating the cancelled one now clashes: the rule checks UPDATEs too
  s.status = 'active';
  const e = await s.save().then(() => assert.fail('reactivation went through'), mapError);
  assert.equal(e.message, 'Room 103 is taken on Tuesday 14:00–15:00 by MATH200 section A');
});

test('moving a class: pre-check with ignore_key, then a versioned save', async () => {
  const wed = { weekday: 3, instructor_id: db.alan.id };
  const s = await bookClass({ ...wed, section_id: db.csA.id, room_id: db.r102.id, starts_at: '09:00', ends_at: '10:30' });
  await bookClass({ ...wed, section_id: db.csB.id, room_id: db.r102.id, starts_at: '11:00', ends_at: '12:00' });

  // shifting by 30 minutes overlaps the class's own current slot: only ignore_key makes it fit
  const moved = { ...wed, section_id: db.csA.id, room_id: db.r102.id, starts_at: '09:30', ends_at: '11:00' };
  const self = await findConflicts(moved);
  assert.ok(self.length >= 1 && self.every((c) => c.key.id === s.id), 'without ignore_key it clashes with itself');
  assert.deepEqual(await findConflicts(moved, { ignoreId: s.id }), []);

  const after1 = await moveClass(s.id, 0, { starts_at: '09:30', ends_at: '11:00' });
  assert.equal(after1.version, 1);
  const row = await one('SELECT starts_at, version FROM class_sessions WHERE id = $1', [s.id]);
  assert.deepEqual(row, { starts_at: '09:30:00', version: 1 }); // kept Sequelize's +1, no double bump

  // a move into the other class's slot is refused, naming it
  await assert.rejects(moveClass(s.id, 1, { starts_at: '10:30', ends_at: '11:30' }),
    { name: 'ScheduleConflictError', message: 'Alan Turing already teaches CS101 section B on Wednesday 11:00–12:00' });
  // a client that read version 0 is told to reload
  await assert.rejects(moveClass(s.id, 0, { room_id: db.r103.id }), StaleVersionError);
  assert.equal((await ClassSession.findByPk(s.id)).version, 1);
});

test("two instances saved from the same read: Sequelize's OptimisticLockError", async () => {
  const s = await bookClass({ weekday: 4, section_id: db.csA.id, room_id: db.r101.id, instructor_id: db.ada.id, starts_at: '13:00', ends_at: '14:00' });
  const a = await ClassSession.findByPk(s.id);
  const b = await ClassSession.findByPk(s.id);
  a.room_id = db.r102.id;
  await a.save();
  assert.equal(a.version, 1);
  b.room_id = db.r103.id;
  const err = await b.save().then(() => assert.fail('stale save went through'), (e) => e);
  assert.ok(err instanceof OptimisticLockError);
  assert.ok((await mapError(err)) instanceof StaleVersionError);
  const row = await one('SELECT room_id, version FROM class_sessions WHERE id = $1', [s.id]);
  assert.deepEqual(row, { room_id: db.r102.id, version: 1 });
});

test('raw SQL that bypasses Sequelize is still checked by slotguard (SG001)', async () => {
  const s = await bookClass({ weekday: 5, section_id: db.csB.id, room_id: db.r101.id, instructor_id: db.grace.id, starts_at: '09:00', ends_at: '10:00' });
  await s.update({ ends_at: '10:15' }); // version 0 -> 1
  const stale = 0;
  // same statement shape Sequelize sends, but without its WHERE version = ?: only the trigger stops it
  const err = await sequelize.query('UPDATE class_sessions SET ends_at = $1, version = $2 WHERE id = $3',
    { bind: ['11:00', stale + 1, s.id] }).then(() => assert.fail('stale raw update went through'), (e) => e);
  assert.ok(err instanceof DatabaseError);
  assert.equal(err.parent.code, 'SG001');
  assert.equal(err.parent.table, 'class_sessions');
  assert.equal(err.parent.column, 'version');
  assert.match(err.parent.detail, new RegExp(`key \\{"id": ${s.id}\\}: expected version 0, current version 1`));
  assert.ok((await mapError(err)) instanceof StaleVersionError);
  // asserting the stored version without +1 is refused too under 'increment'
  await assert.rejects(sequelize.query('UPDATE class_sessions SET ends_at = $1, version = 1 WHERE id = $2', { bind: ['11:00', s.id] }),
    (e) => e.parent.code === 'SG001');
  assert.deepEqual(await one('SELECT ends_at, version FROM class_sessions WHERE id = $1', [s.id]), { ends_at: '10:15:00', version: 1 });
  // the right +1 goes through and is kept
  await sequelize.query('UPDATE class_sessions SET ends_at = $1, version = 2 WHERE id = $2', { bind: ['11:00', s.id] });
  assert.deepEqual(await one('SELECT ends_at, version FROM class_sessions WHERE id = $1', [s.id]), { ends_at: '11:00:00', version: 2 });
});

test('a raw update without version bumps it: the stale Sequelize instance gets OptimisticLockError', async () => {
  const s = await bookClass({ weekday: 6, section_id: db.mathA.id, room_id: db.r102.id, instructor_id: db.alan.id, starts_at: '09:00', ends_at: '10:00' });
  const before = await one('SELECT created_at, updated_at, version FROM class_sessions WHERE id = $1', [s.id]);
  await sequelize.query("UPDATE class_sessions SET ends_at = '10:30', created_at = '2000-01-01' WHERE id = $1", { bind: [s.id] });
  const row = await one('SELECT created_at, updated_at, version FROM class_sessions WHERE id = $1', [s.id]);
  assert.equal(row.version, before.version + 1);
  assert.equal(row.created_at.getTime(), before.created_at.getTime(), 'created_at is kept by the trigger');
  assert.ok(row.updated_at > before.updated_at, 'updated_at is set by the trigger');

  // a raw INSERT that leaves the timestamps and version to the database
  const ins = await one(`INSERT INTO class_sessions (section_id, room_id, instructor_id, weekday, starts_at, ends_at)
                         VALUES ($1, $2, $3, 6, '12:00', '13:00') RETURNING version, created_at = updated_at AS same`,
  [db.csB.id, db.r102.id, db.grace.id]);
  assert.deepEqual(ins, { version: 0, same: true });

  s.room_id = db.r103.id; // s still holds version 0
  await assert.rejects(s.save(), OptimisticLockError);
  assert.equal((await ClassSession.findByPk(s.id)).room_id, db.r102.id);
  await s.reload();
  s.room_id = db.r103.id;
  await s.save();
  assert.equal(s.version, 2);
});

test('N concurrent bookings of the same room and time: exactly one wins', async () => {
  const N = 8;
  const course = await Course.create({ code: 'PHYS150', title: 'Mechanics' });
  const sections = await Section.bulkCreate(Array.from({ length: N }, (_, i) => ({ course_id: course.id, label: String.fromCharCode(65 + i) })));
  const teachers = await Instructor.bulkCreate(Array.from({ length: N }, (_, i) => ({ name: `Teacher ${i}`, email: `t${i}@example.edu` })));

  // every booking passes its pre-check before any of them inserts: the check-then-insert window
  // the original team's code had. The database rule closes it.
  let checked = 0;
  let release;
  const allChecked = new Promise((r) => { release = r; });
  const afterCheck = () => { if (++checked === N) release(); return allChecked; };
  const results = await Promise.allSettled(sections.map((sec, i) => bookClass(
    { weekday: 7, room_id: db.r101.id, section_id: sec.id, instructor_id: teachers[i].id, starts_at: '10:00', ends_at: '11:30' },
    { afterCheck })));
  assert.equal(checked, N);

  const won = results.filter((r) => r.status === 'fulfilled');
  const lost = results.filter((r) => r.status === 'rejected').map((r) => r.reason);
  assert.equal(won.length, 1, `exactly one booking wins, got ${won.length}`);
  const winner = sections.find((sec) => sec.id === won[0].value.section_id);
  assert.equal(lost.length, N - 1);
  for (const e of lost) {
    assert.ok(e instanceof ScheduleConflictError, `loser got ${e && e.stack}`);
    assert.equal(e.rule, 'room_busy');
    assert.equal(e.message, `Room 101 is taken on Sunday 10:00–11:30 by PHYS150 section ${winner.label}`);
    assert.equal(e.cause.parent.code, '23P01'); // refused by the database, not by the pre-check
  }
  assert.equal(await ClassSession.count({ where: { weekday: 7, room_id: db.r101.id } }), 1);
});
