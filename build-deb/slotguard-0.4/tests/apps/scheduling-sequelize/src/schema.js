'use strict';
// Schema setup: Sequelize creates the tables, slotguard takes over the concurrency rules.
//
// Timestamps: Sequelize (timestamps + underscored) and slotguard (timestamps => true) both know
// created_at / updated_at. We let Sequelize create the columns (timestamptz, the names it maps)
// and keep slotguard's timestamps on, so the database is the authority: every UPDATE, also raw
// SQL that bypasses Sequelize, gets updated_at = now(), and created_at cannot be overwritten.
// Sequelize still sends its own values; the trigger overrides them, so nothing is written twice
// in a way that could disagree after a reload.
const { sequelize } = require('./models');

const VERSIONED = ['rooms', 'instructors', 'courses', 'sections', 'class_sessions'];

// One rule per thing that cannot be in two places at once. The key includes the weekday, the
// period is the [starts_at, ends_at) time of day; cancelled sessions free their slot.
const OVERLAP_RULES = [
  ['room_busy', '{room_id,weekday}', 'room {room_id} is already booked on day {weekday} {starts_at}-{ends_at}'],
  ['instructor_busy', '{instructor_id,weekday}', 'instructor {instructor_id} already teaches on day {weekday} {starts_at}-{ends_at}'],
  ['section_busy', '{section_id,weekday}', 'section {section_id} already meets on day {weekday} {starts_at}-{ends_at}'],
];

async function setupSchema() {
  await sequelize.sync();
  for (const tbl of VERSIONED) {
    // 'increment': Sequelize sends SET version = read + 1 WHERE version = read; the trigger
    // keeps that +1 instead of bumping again, and checks writers that bypass Sequelize.
    await sequelize.query(
      "SELECT slotguard.enable_versioning($1::regclass, version_style => 'increment')",
      { bind: [tbl] });
    // enable_versioning adopts Sequelize's columns and gives created_at / updated_at (which
    // sync() makes NOT NULL without a default) DEFAULT now(), so raw INSERTs work as well.
  }
  for (const [rule, key, message] of OVERLAP_RULES) {
    await sequelize.query(
      `SELECT slotguard.add_overlap_rule('class_sessions', $1, $2::name[], '{starts_at,ends_at}',
                                         only_when => 'status <> ''cancelled''', message => $3)`,
      { bind: [rule, key, message] });
  }
}

module.exports = { setupSchema, VERSIONED, OVERLAP_RULES };
