'use strict';
// One Sequelize instance for the app, configured from the libpq variables (PGHOST may be a
// socket directory; node-postgres connects through it then).
const { Sequelize } = require('sequelize');

const sequelize = new Sequelize(process.env.PGDATABASE, process.env.PGUSER || 'postgres',
  process.env.PGPASSWORD || null, {
    dialect: 'postgres',
    host: process.env.PGHOST || 'localhost',
    port: Number(process.env.PGPORT || 5432),
    logging: false,
    // enough connections for the concurrency test's racing bookings (each holds one)
    pool: { max: 12, min: 0, idle: 1000 },
  });

module.exports = { sequelize };
