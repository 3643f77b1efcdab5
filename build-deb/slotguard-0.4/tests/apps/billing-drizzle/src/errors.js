'use strict';
// The application's own error classes, and the one place that maps slotguard's SQLSTATEs to them.

class OptimisticLockError extends Error {
  constructor(entityType, entityId, expectedVersion, currentVersion, cause) {
    super(`${entityType} ${entityId} was modified concurrently` +
      (currentVersion ? ` (expected version ${expectedVersion}, current ${currentVersion})` : ''));
    this.name = 'OptimisticLockError';
    Object.assign(this, { entityType, entityId, expectedVersion, currentVersion, cause });
  }
}

class NotFoundError extends Error {
  constructor(entityType, entityId, cause) {
    super(`${entityType} ${entityId} not found`);
    this.name = 'NotFoundError';
    Object.assign(this, { entityType, entityId, cause });
  }
}

// drizzle-orm >= 0.44 wraps driver errors in DrizzleQueryError (the pg error is in .cause); older
// versions and raw pg throw the DatabaseError itself. Walk the .cause chain to the SQLSTATE.
function sqlstateError(err) {
  for (let e = err, depth = 0; e && depth < 10; e = e.cause, depth++) {
    if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) return e;
  }
  return null;
}

// SG001's DETAIL: "Table public.t, key {...}: expected version <v>, current version <v>."
function versionsFromDetail(detail) {
  const m = /expected version ([^,\s]+), current version ([^\s]+?)\.?$/.exec(detail || '');
  return m ? { expected: m[1], current: m[2] } : {};
}

// mapDbError(err, entityType, entityId, expectedVersion): the app error for a slotguard error, or
// the original error for anything else.
function mapDbError(err, entityType, entityId, expectedVersion) {
  const pgErr = sqlstateError(err);
  if (pgErr?.code === 'SG001') {
    const v = versionsFromDetail(pgErr.detail);
    return new OptimisticLockError(entityType, entityId, v.expected ?? expectedVersion, v.current, err);
  }
  if (pgErr?.code === 'SG002') return new NotFoundError(entityType, entityId, err);
  return err;
}

module.exports = { OptimisticLockError, NotFoundError, mapDbError, sqlstateError };
