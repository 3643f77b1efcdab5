// util: small PostgreSQL-style helpers shared by the SQL functions. Everything here returns
// palloc'd data and holds no C++ objects, so it may be called unguarded from PostgreSQL-style
// frames; C++ frames wrap calls in sg::guard().
#pragma once

#include "pg.hpp"

namespace sg::util {

// check_table returns relid's relkind after checking it is a table (22023 otherwise) and, when
// require_owner, that the current user owns it (42501 otherwise, as ALTER TABLE says it).
char check_table(Oid relid, bool require_owner);

// qualified_name returns "schema"."table" for relid, quoted as needed.
char* qualified_name(Oid relid);

// trigger_data returns the TriggerData of a trigger function's call; `function` names the function
// ("slotguard.audit_trigger()") in the error thrown (sg::Error, 39P01) when it was not called as a
// trigger.
TriggerData* trigger_data(FunctionCallInfo fcinfo, const char* function);

// backend_hash creates a backend-local hash table in TopMemoryContext, keyed by the bytes of a
// key of keysize (HASH_BLOBS), for the caches that live as long as the backend.
HTAB* backend_hash(const char* name, long nelem, Size keysize, Size entrysize);

// find_trigger returns the trigger of rel called name, or NULL.
Trigger* find_trigger(Relation rel, const char* name);

// row_key_json returns the primary key of tuple as a JSON object text ({"id": 7}); tables without
// a primary key give NULL.
char* row_key_json(Relation rel, HeapTuple tuple);

// json_value_text renders one datum as JSON: numbers and booleans bare, everything else a string.
void append_json_value(StringInfo buf, Datum value, Oid type);

// operator_sql returns OPERATOR(schema.name) for an operator oid, schema-qualified.
char* operator_sql(Oid opr);

// spi_exec runs one utility or DML statement through SPI (connected by the caller).
void spi_exec(const char* sql);

// audit_owner returns the owner of slotguard.audit (the extension's owner, unless a DBA gave the
// table away): the role the audit trigger writes as.
Oid audit_owner();

// OwnerScope switches the current user to the extension's owner (enter(audit_owner())) so
// that slotguard's own tables can be written whatever the caller's rights; restore() switches
// back. An error in between is cleaned up by transaction abort, which restores the user.

// Lock classes of slotguard's own transaction-scoped locks. They use the advisory lock tag with a
// class number (locktag_field4) that pg_advisory_lock() and friends cannot take (those use 1 and
// 2), so no role can take, hold or block them from SQL, and they never collide with an
// application's own advisory locks. pg_locks shows them as locktype 'advisory' with objsubid =
// the class.
enum class LockClass : uint16 {
  kOverlapKey = 0x5347,  // one (overlap rule, key value) pair
  kHolder = 0x5348,      // one (slot, holder) pair of a one-per-holder slot
};

// lock_xact takes slotguard's exclusive lock (klass, key) until the transaction ends; it waits
// like any heavyweight lock (deadlock detection, lock_timeout, cancel).
void lock_xact(LockClass klass, uint64 key);

struct OwnerScope {
  Oid saved_user;
  int saved_context;
  void enter(Oid owner);
  void restore() const;
};

}  // namespace sg::util
