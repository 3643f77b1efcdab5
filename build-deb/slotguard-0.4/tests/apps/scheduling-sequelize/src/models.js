'use strict';
// Models: rooms, instructors, courses and their sections, and weekly class sessions.
// Every model uses Sequelize's optimistic locking (`version: true`) and underscored names, so its
// columns are version / created_at / updated_at: exactly the ones slotguard.enable_versioning
// adopts (see schema.js for who owns the timestamps).
const { DataTypes } = require('sequelize');
const { sequelize } = require('./db');

const common = { underscored: true, timestamps: true, version: true };

const Room = sequelize.define('Room', {
  name: { type: DataTypes.TEXT, allowNull: false, unique: true },
  seats: { type: DataTypes.INTEGER, allowNull: false },
}, { ...common, tableName: 'rooms' });

const Instructor = sequelize.define('Instructor', {
  name: { type: DataTypes.TEXT, allowNull: false },
  email: { type: DataTypes.TEXT, allowNull: false, unique: true },
}, { ...common, tableName: 'instructors' });

const Course = sequelize.define('Course', {
  code: { type: DataTypes.TEXT, allowNull: false, unique: true },
  title: { type: DataTypes.TEXT, allowNull: false },
}, { ...common, tableName: 'courses' });

const Section = sequelize.define('Section', {
  label: { type: DataTypes.TEXT, allowNull: false },
}, { ...common, tableName: 'sections', indexes: [{ unique: true, fields: ['course_id', 'label'] }] });

const ClassSession = sequelize.define('ClassSession', {
  weekday: { type: DataTypes.SMALLINT, allowNull: false, validate: { min: 1, max: 7 } }, // ISO: 1 = Monday
  starts_at: { type: DataTypes.TIME, allowNull: false },
  ends_at: { type: DataTypes.TIME, allowNull: false },
  status: { type: DataTypes.TEXT, allowNull: false, defaultValue: 'active' }, // active | cancelled
}, { ...common, tableName: 'class_sessions' });

Section.belongsTo(Course, { foreignKey: { name: 'course_id', allowNull: false } });
ClassSession.belongsTo(Section, { foreignKey: { name: 'section_id', allowNull: false } });
ClassSession.belongsTo(Room, { foreignKey: { name: 'room_id', allowNull: false } });
ClassSession.belongsTo(Instructor, { foreignKey: { name: 'instructor_id', allowNull: false } });

module.exports = { sequelize, Room, Instructor, Course, Section, ClassSession };
