// versioning: what the four files of versioned updates share (docs/sql-api.md "Versioned
// updates"):
//  - versioning.cpp        enable_versioning / disable_versioning: add the columns, install or
//                          remove the two triggers (DDL, run once per table);
//  - version_trigger.cpp   slotguard.version_trigger(), BEFORE UPDATE FOR EACH ROW: checks and
//                          bumps the version of every updated row (the hot path);
//  - audit.cpp             slotguard.audit_trigger(), AFTER INSERT OR UPDATE OR DELETE FOR EACH
//                          ROW: appends one row per change to slotguard.audit;
//  - update_versioned.cpp  slotguard.update_versioned(): one row by key, expected version and a
//                          JSON object of changes (C++ with guarded PostgreSQL calls).
//
// The version trigger's configuration travels in its arguments (version column, type, timestamps,
// require_version, style), so the hot path reads it from the relcache's trigger descriptor and
// never looks anything up in a catalog; pg_dump carries it along with the trigger.
#pragma once

#include "pg.hpp"
#include "version_rules.hpp"

namespace sg::versioning {

// The names of the two triggers enable_versioning installs.
inline constexpr const char* kVersionTrigger = "slotguard_10_version";
inline constexpr const char* kAuditTrigger = "slotguard_90_audit";

// VersionConfig is the version trigger's arguments, decoded.
struct VersionConfig {
  const char* column;
  bool uuid;
  bool timestamps;
  bool require;
  sg::core::VersionStyle style;
};

// decode_config reads the version trigger's arguments; false when they are not exactly what
// enable_versioning writes (a trigger created by hand may carry anything).
bool decode_config(const Trigger* tg, VersionConfig* out);

// The (base) types a version or timestamp column may have.
inline constexpr Oid kIntTypes[] = {INT8OID, INT4OID, INT2OID};
inline constexpr Oid kUuidType[] = {UUIDOID};
inline constexpr Oid kTimeTypes[] = {TIMESTAMPTZOID, TIMESTAMPOID};

// base_type_in says whether base is one of allowed[0 .. n-1].
bool base_type_in(Oid base, const Oid* allowed, int n);

// table_arg returns the tbl argument (argument 0) of a versioning function; 22023 when NULL.
Oid table_arg(FunctionCallInfo fcinfo);

}  // namespace sg::versioning
