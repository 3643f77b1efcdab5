'use strict';
// The scheduling service: book, move and cancel weekly class sessions. The concurrency rules live
// in the database (slotguard); this file only asks it (find_conflicts) and translates its answers
// (23P01, SG001, Sequelize's OptimisticLockError) into business words.
const { OptimisticLockError, QueryTypes } = require('sequelize');
const { sequelize, Room, Instructor, Course, Section, ClassSession } = require('./models');

const DAYS = [null, 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];
const CANDIDATE_COLUMNS = ['section_id', 'room_id', 'instructor_id', 'weekday', 'starts_at', 'ends_at', 'status'];

class ScheduleConflictError extends Error {
  constructor(message, { rule = null, conflicting = null, cause } = {}) {
    super(message, { cause });
    this.name = 'ScheduleConflictError';
    this.status = 409;
    this.rule = rule; // 'room_busy' | 'instructor_busy' | 'section_busy'
    this.conflicting = conflicting; // the clashing class_sessions row
  }
}

class StaleVersionError extends Error {
  constructor(message = 'This class was changed by someone else; reload it and try again', { detail = null, cause } = {}) {
    super(message, { cause });
    this.name = 'StaleVersionError';
    this.status = 409;
    this.detail = detail;
  }
}

const hhmm = (t) => String(t).slice(0, 5);
const pick = (obj, keys) => Object.fromEntries(keys.filter((k) => obj[k] !== undefined).map((k) => [k, obj[k]]));

// "Room 101 is taken on Monday 09:00–10:30 by CS101 section A" for the clashing row.
async function conflictMessage(rule, row, transaction) {
  // one after the other: inside a transaction they share one connection
  const room = await Room.findByPk(row.room_id, { transaction });
  const instructor = await Instructor.findByPk(row.instructor_id, { transaction });
  const section = await Section.findByPk(row.section_id, { include: Course, transaction });
  const when = `${DAYS[row.weekday]} ${hhmm(row.starts_at)}–${hhmm(row.ends_at)}`;
  const cls = `${section.Course.code} section ${section.label}`;
  switch (rule) {
    case 'room_busy': return `Room ${room.name} is taken on ${when} by ${cls}`;
    case 'instructor_busy': return `${instructor.name} already teaches ${cls} on ${when}`;
    case 'section_busy': return `${cls} already meets on ${when} in room ${room.name}`;
    default: return `Conflicts with ${cls} on ${when} (${rule})`;
  }
}

// Availability pre-check (writes nothing). ignoreId leaves out the session being moved.
async function findConflicts(candidate, { ignoreId = null, transaction } = {}) {
  const rows = await sequelize.query(
    `SELECT rule_name, conflicting_key, conflicting_row
       FROM slotguard.find_conflicts($1::regclass, $2::jsonb, $3::jsonb)`,
    {
      bind: ['class_sessions', JSON.stringify(pick(candidate, CANDIDATE_COLUMNS)),
        ignoreId == null ? null : JSON.stringify({ id: ignoreId })],
      type: QueryTypes.SELECT,
      transaction,
    });
  const conflicts = [];
  for (const r of rows) {
    conflicts.push({
      rule: r.rule_name,
      key: r.conflicting_key,
      row: r.conflicting_row,
      message: await conflictMessage(r.rule_name, r.conflicting_row, transaction),
    });
  }
  return conflicts;
}

// DETAIL of slotguard's 23P01: Rule "room_busy": the row overlaps {"id": 12} during [09:00:00,10:30:00).
const OVERLAP_DETAIL = /^Rule "([^"]+)": the row overlaps (\{.*\}) during /;

// Sequelize wraps node-postgres' error: 23P01 arrives as ExclusionConstraintError, SG001 as a
// DatabaseError; the SQLSTATE, message and DETAIL are on err.parent (= err.original).
async function mapError(err) {
  if (err instanceof ScheduleConflictError || err instanceof StaleVersionError) return err;
  if (err instanceof OptimisticLockError) return new StaleVersionError(undefined, { cause: err });
  const pgErr = err.parent || err.original;
  switch (pgErr && pgErr.code) {
    case '23P01': {
      const m = OVERLAP_DETAIL.exec(pgErr.detail || '');
      const rule = pgErr.constraint || (m && m[1]); // constraint_name, where slotguard sets it
      const row = m && await ClassSession.findByPk(JSON.parse(m[2]).id, { raw: true });
      if (row) {
        return new ScheduleConflictError(await conflictMessage(rule, row), { rule, conflicting: row, cause: err });
      }
      // the clashing row is gone already: the rule's own message template still says what clashed
      return new ScheduleConflictError(pgErr.message, { rule, cause: err });
    }
    case 'SG001':
      return new StaleVersionError(undefined, { detail: pgErr.detail, cause: err });
    default:
      return err;
  }
}

function conflictError(conflicts) {
  const [first] = conflicts;
  return new ScheduleConflictError(first.message, { rule: first.rule, conflicting: first.row });
}

// Book a new weekly session. afterCheck (optional) runs between the pre-check and the INSERT,
// e.g. a confirmation step; the database rule, not the pre-check, is what keeps it race-free.
async function bookClass(fields, { afterCheck } = {}) {
  try {
    return await sequelize.transaction(async (transaction) => {
      const conflicts = await findConflicts({ status: 'active', ...fields }, { transaction });
      if (conflicts.length) throw conflictError(conflicts);
      if (afterCheck) await afterCheck();
      return await ClassSession.create(fields, { transaction });
    });
  } catch (err) {
    throw await mapError(err);
  }
}

// Move (or otherwise edit) a session the client read at readVersion.
async function moveClass(id, readVersion, changes) {
  try {
    const session = await ClassSession.findByPk(id);
    if (!session) throw Object.assign(new Error(`class session ${id} not found`), { status: 404 });
    if (session.version !== readVersion) throw new StaleVersionError();
    session.set(pick(changes, CANDIDATE_COLUMNS));
    const conflicts = await findConflicts(session.get({ plain: true }), { ignoreId: id });
    if (conflicts.length) throw conflictError(conflicts);
    return await session.save(); // UPDATE ... SET version = read + 1 WHERE id = ? AND version = read
  } catch (err) {
    throw await mapError(err);
  }
}

module.exports = {
  ScheduleConflictError, StaleVersionError, findConflicts, mapError, bookClass, moveClass, DAYS,
};
