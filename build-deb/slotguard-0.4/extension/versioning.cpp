// versioning: enable_versioning / disable_versioning / update_versioned and the two triggers that
// make every UPDATE of a versioned table a checked optimistic update (SPEC "Versioned updates").
//
// The trigger's configuration travels in its arguments (version column, type, timestamps,
// require_version, style), so the hot path reads it from the relcache's trigger descriptor and
// never looks anything up in a catalog; pg_dump carries it along with the trigger.
#include "boundary.hpp"
#include "row_moves.hpp"
#include "stats.hpp"
#include "util.hpp"
#include "version_rules.hpp"

#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using sg::Error;
using sg::guard;
using sg::core::VersionStyle;
using sg::core::VersionVerdict;

constexpr const char* kVersionTrigger = "slotguard_10_version";
constexpr const char* kAuditTrigger = "slotguard_90_audit";

// VersionConfig is the version trigger's arguments, decoded.
struct VersionConfig {
  const char* column;
  bool uuid;
  bool timestamps;
  bool require;
  VersionStyle style;
};

// flag reads a boolean trigger argument as enable_versioning writes it ('t' / 'f').
bool flag(const char* s, bool* out) {
  if (strcmp(s, "t") == 0 || strcmp(s, "f") == 0) {
    *out = s[0] == 't';
    return true;
  }
  return false;
}

// decode_config reads the version trigger's arguments; false when they are not exactly what
// enable_versioning writes (a trigger created by hand may carry anything).
bool decode_config(const Trigger* tg, VersionConfig* out) {
  if (tg->tgnargs != 5) return false;
  out->column = tg->tgargs[0];
  if (out->column[0] == '\0') return false;
  if (strcmp(tg->tgargs[1], "uuid") == 0)
    out->uuid = true;
  else if (strcmp(tg->tgargs[1], "bigint") == 0)
    out->uuid = false;
  else
    return false;
  if (!flag(tg->tgargs[2], &out->timestamps) || !flag(tg->tgargs[3], &out->require)) return false;
  if (!sg::core::parse_version_style(tg->tgargs[4], &out->style)) return false;
  return !(out->uuid && out->style == VersionStyle::kIncrement);
}

// One column the trigger reads or writes: its attribute number, its type as declared and the base
// type (a domain's) that decides how its Datum is built and read.
struct ColumnRef {
  AttrNumber att;
  Oid type;
  Oid base;
};

// Per-statement cache of the version trigger (in fn_extra).
struct TriggerCache {
  Oid tgoid;
  VersionConfig config;
  ColumnRef version, created, updated;  // created / updated: att 0 when absent or not used
};

const Oid kIntTypes[] = {INT8OID, INT4OID, INT2OID};
const Oid kUuidType[] = {UUIDOID};
const Oid kTimeTypes[] = {TIMESTAMPTZOID, TIMESTAMPOID};

bool base_type_in(Oid base, const Oid* allowed, int n) {
  for (int i = 0; i < n; i++)
    if (base == allowed[i]) return true;
  return false;
}

// column_ref finds column `name` of the trigger's relation and checks that its type is one the
// trigger can read and write. Every Datum the trigger touches is read through a ColumnRef checked
// here: the table may have been altered (column dropped, renamed or retyped) after
// enable_versioning, or the trigger created by hand on any table. Absent columns give att 0 unless
// `required`.
ColumnRef column_ref(TriggerData* td, const char* name, bool required, const Oid* allowed,
                     int nallowed, const char* type_name, const char* hint) {
  Relation rel = td->tg_relation;
  TupleDesc desc = RelationGetDescr(rel);
  ColumnRef ref = {InvalidAttrNumber, InvalidOid, InvalidOid};
  const int att = SPI_fnumber(desc, name);  // skips dropped columns; system columns are < 0
  if (att <= 0) {
    if (!required) return ref;
    throw Error(ERRCODE_UNDEFINED_COLUMN,
                psprintf("version column \"%s\" of relation \"%s\" does not exist", name,
                         sg::util::qualified_name(RelationGetRelid(rel))),
                psprintf("Trigger \"%s\" names it; the column was dropped or renamed after "
                         "slotguard.enable_versioning(), or the trigger was created by hand.",
                         td->tg_trigger->tgname),
                "Call slotguard.enable_versioning() again to re-install the trigger, or "
                "slotguard.disable_versioning() to remove it.")
        .on(RelationGetRelid(rel), name);
  }
  ref.att = static_cast<AttrNumber>(att);
  ref.type = TupleDescAttr(desc, att - 1)->atttypid;
  ref.base = getBaseType(ref.type);
  if (!base_type_in(ref.base, allowed, nallowed))
    throw Error(ERRCODE_DATATYPE_MISMATCH,
                psprintf("column \"%s\" of relation \"%s\" has type %s, but the version "
                         "trigger needs %s",
                         name, sg::util::qualified_name(RelationGetRelid(rel)),
                         format_type_be(ref.type), type_name),
                psprintf("Trigger \"%s\" was installed for another type; the column was "
                         "altered after slotguard.enable_versioning(), or the trigger was created "
                         "by hand.",
                         td->tg_trigger->tgname),
                hint)
        .on(RelationGetRelid(rel), name);
  return ref;
}

// still_valid re-checks, per row and cheaply, that a cached ColumnRef matches the descriptor the
// row comes with (the cache lives for one statement, in which the table cannot be altered; this
// makes that assumption a checked one).
bool still_valid(TupleDesc desc, const ColumnRef& ref) {
  if (ref.att == InvalidAttrNumber) return true;
  if (ref.att > desc->natts) return false;
  Form_pg_attribute a = TupleDescAttr(desc, ref.att - 1);
  return !a->attisdropped && a->atttypid == ref.type;
}

TriggerCache* trigger_cache(FunctionCallInfo fcinfo, TriggerData* td) {
  auto* cache = static_cast<TriggerCache*>(fcinfo->flinfo->fn_extra);
  TupleDesc desc = RelationGetDescr(td->tg_relation);
  if (cache && cache->tgoid == td->tg_trigger->tgoid && still_valid(desc, cache->version) &&
      still_valid(desc, cache->created) && still_valid(desc, cache->updated))
    return cache;
  VersionConfig config;
  if (!decode_config(td->tg_trigger, &config))
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                psprintf("trigger \"%s\" has bad arguments for slotguard.version_trigger()",
                         td->tg_trigger->tgname),
                "The arguments are (version_column, 'bigint' | 'uuid', 't' | 'f', 't' | 'f', "
                "'assert' | 'increment'), as slotguard.enable_versioning() writes them.",
                "Install the trigger with slotguard.enable_versioning().")
        .on(RelationGetRelid(td->tg_relation));
  const char* hint =
      "Change the column back to the type it had, or call "
      "slotguard.enable_versioning() again (it checks the types and re-installs "
      "the trigger), or slotguard.disable_versioning().";
  const ColumnRef version =
      config.uuid
          ? column_ref(td, config.column, true, kUuidType, 1, "uuid", hint)
          : column_ref(td, config.column, true, kIntTypes, 3, "bigint, integer or smallint", hint);
  ColumnRef created = {InvalidAttrNumber, InvalidOid, InvalidOid};
  ColumnRef updated = created;
  if (config.timestamps) {
    const char* ts_hint =
        "Change the column back to timestamptz, or call "
        "slotguard.enable_versioning() again, with timestamps => false if the "
        "column is to keep its new type.";
    created =
        column_ref(td, "created_at", false, kTimeTypes, 2, "timestamptz or timestamp", ts_hint);
    updated =
        column_ref(td, "updated_at", false, kTimeTypes, 2, "timestamptz or timestamp", ts_hint);
  }
  if (cache == nullptr)
    cache = static_cast<TriggerCache*>(
        MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(TriggerCache)));
  cache->tgoid = td->tg_trigger->tgoid;
  cache->config = config;
  cache->config.column = MemoryContextStrdup(fcinfo->flinfo->fn_mcxt, config.column);
  cache->version = version;
  cache->created = created;
  cache->updated = updated;
  fcinfo->flinfo->fn_extra = cache;
  return cache;
}

int64 int_value(Datum d, Oid type) {
  switch (type) {
    case INT2OID:
      return DatumGetInt16(d);
    case INT4OID:
      return DatumGetInt32(d);
    default:
      return DatumGetInt64(d);
  }
}

Datum int_datum(int64 v, Oid type) {
  switch (type) {
    case INT2OID:
      return Int16GetDatum(v > PG_INT16_MAX ? 1 : static_cast<int16>(v));
    case INT4OID:
      return Int32GetDatum(v > PG_INT32_MAX ? 1 : static_cast<int32>(v));
    default:
      return Int64GetDatum(v);
  }
}

Datum random_uuid() {
  auto* uuid = static_cast<pg_uuid_t*>(palloc(sizeof(pg_uuid_t)));
  if (!pg_strong_random(uuid->data, UUID_LEN))
    throw Error(ERRCODE_INTERNAL_ERROR, "could not generate a random UUID");
  uuid->data[6] = (uuid->data[6] & 0x0f) | 0x40;  // version 4
  uuid->data[8] = (uuid->data[8] & 0x3f) | 0x80;  // RFC 4122 variant
  return UUIDPGetDatum(uuid);
}

Datum now_datum(Oid type) {
  const TimestampTz now = GetCurrentTransactionStartTimestamp();
  if (type == TIMESTAMPOID)
    return DirectFunctionCall1(timestamptz_timestamp, TimestampTzGetDatum(now));
  return TimestampTzGetDatum(now);
}

char* version_text(Datum d, bool isnull, Oid type) {
  if (isnull) return pstrdup("NULL");
  Oid out;
  bool varlena;
  getTypeOutputInfo(type, &out, &varlena);
  return OidOutputFunctionCall(out, d);
}

[[noreturn]] void raise_conflict(TriggerData* td, const TriggerCache* c, const char* expected,
                                 const char* current, bool required) {
  Relation rel = td->tg_relation;
  sg::stats::count(sg::stats::Scope::kTable, RelationGetRelid(rel), sg::stats::kVersionConflicts);
  const char* table = sg::util::qualified_name(RelationGetRelid(rel));
  const char* key = sg::util::row_key_json(rel, td->tg_trigtuple);
  if (key == nullptr) key = "(no primary key)";
  if (required)
    throw Error(sg::errcodes::kVersionConflict,
                psprintf("update of \"%s\" does not set the version column \"%s\"", table,
                         c->config.column),
                psprintf("Table %s, key %s: current version %s; the table requires every UPDATE "
                         "to set the version it read.",
                         table, key, current),
                psprintf("Set the version you read: UPDATE ... SET %s = <version read> ...",
                         quote_identifier(c->config.column)))
        .on(RelationGetRelid(rel), c->config.column);
  throw Error(sg::errcodes::kVersionConflict, psprintf("version conflict on \"%s\"", table),
              psprintf("Table %s, key %s: expected version %s, current version %s.", table, key,
                       expected, current),
              c->config.style == VersionStyle::kIncrement
                  ? psprintf("Re-read the row and apply the change to its current version. The "
                             "table uses version_style 'increment': SET %s = <version read> + 1.",
                             quote_identifier(c->config.column))
                  : "Re-read the row and apply the change to its current version.")
      .on(RelationGetRelid(rel), c->config.column);
}

}  // namespace

// slotguard.version_trigger(): BEFORE UPDATE FOR EACH ROW on a versioned table. Checks the
// version the UPDATE asserted (if it set the column), bumps it, and maintains the timestamps.
SG_FUNCTION(sg_version_trigger) {
  if (!CALLED_AS_TRIGGER(fcinfo))
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                "slotguard.version_trigger() called outside a trigger");
  auto* td = reinterpret_cast<TriggerData*>(fcinfo->context);
  if (!TRIGGER_FIRED_BEFORE(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
      !TRIGGER_FIRED_BY_UPDATE(td->tg_event))
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                "slotguard.version_trigger() must fire BEFORE UPDATE FOR EACH ROW");
  TriggerCache* c = trigger_cache(fcinfo, td);
  TupleDesc desc = RelationGetDescr(td->tg_relation);
  HeapTuple old_tuple = td->tg_trigtuple;
  HeapTuple new_tuple = td->tg_newtuple;
  const AttrNumber va = c->version.att;
  const bool set = bms_is_member(va - FirstLowInvalidHeapAttributeNumber, td->tg_updatedcols);
  bool old_null, new_null;
  const Datum old_v = heap_getattr(old_tuple, va, desc, &old_null);
  const Datum new_v = heap_getattr(new_tuple, va, desc, &new_null);

  int cols[3];
  Datum values[3];
  bool nulls[3] = {false, false, false};
  int n = 0;

  if (c->config.uuid) {
    bool equal = old_null == new_null;
    if (equal && !old_null)
      equal = memcmp(DatumGetUUIDP(old_v)->data, DatumGetUUIDP(new_v)->data, UUID_LEN) == 0;
    const auto kind = sg::core::decide_uuid(c->config.require, set, equal);
    if (kind != VersionVerdict::Kind::kAccept)
      raise_conflict(td, c, version_text(new_v, new_null, c->version.type),
                     version_text(old_v, old_null, c->version.type),
                     kind == VersionVerdict::Kind::kRequired);
    values[n] = random_uuid();
  } else {
    const int64 stored = old_null ? 0 : int_value(old_v, c->version.base);
    const int64 given = new_null ? 0 : int_value(new_v, c->version.base);
    VersionVerdict verdict =
        sg::core::decide_bigint(c->config.style, c->config.require, set, stored, given);
    if (set && new_null && !old_null) verdict.kind = VersionVerdict::Kind::kStale;
    if (verdict.kind != VersionVerdict::Kind::kAccept)
      raise_conflict(td, c,
                     new_null ? "NULL"
                              : psprintf(INT64_FORMAT, verdict.kind == VersionVerdict::Kind::kStale
                                                           ? verdict.expected
                                                           : given),
                     version_text(old_v, old_null, c->version.type),
                     verdict.kind == VersionVerdict::Kind::kRequired);
    values[n] = int_datum(verdict.value, c->version.base);
  }
  // A domain's constraints are not checked on what a BEFORE trigger writes: check them here.
  if (c->version.type != c->version.base)
    domain_check(values[n], false, c->version.type, nullptr, nullptr);
  cols[n++] = va;
  if (c->config.timestamps) {
    if (c->updated.att != InvalidAttrNumber) {
      cols[n] = c->updated.att;
      values[n] = now_datum(c->updated.base);
      if (c->updated.type != c->updated.base)
        domain_check(values[n], false, c->updated.type, nullptr, nullptr);
      n++;
    }
    if (c->created.att != InvalidAttrNumber) {
      cols[n] = c->created.att;
      values[n] = heap_getattr(old_tuple, c->created.att, desc, &nulls[n]);
      n++;
    }
  }
  sg::stats::count(sg::stats::Scope::kTable, RelationGetRelid(td->tg_relation),
                   sg::stats::kVersionedUpdates);
  return PointerGetDatum(heap_modify_tuple_by_cols(new_tuple, desc, n, cols, values, nulls));
}

namespace {

// The audit insert: one generic plan for every table. Fully schema-qualified (names, functions,
// operators, casts), because it runs with the extension owner's rights: no caller's search_path
// can reach it. Parameters: $1 db_role, $2 tbl, $3 op, $4 primary-key column names, $5 version
// column, $6 old row as json, $7 new row as json.
constexpr const char* kAuditSql =
    "INSERT INTO slotguard.audit (txid, db_role, actor, actor_role, tbl, row_key, op, "
    "old_version, new_version, changes) "
    "SELECT pg_catalog.txid_current(), $1, "
    "(SELECT CASE WHEN v OPERATOR(pg_catalog.=) '' THEN NULL ELSE v END "
    "   FROM pg_catalog.current_setting('slotguard.actor', true) v), "
    "(SELECT CASE WHEN v OPERATOR(pg_catalog.=) '' THEN NULL ELSE v END "
    "   FROM pg_catalog.current_setting('slotguard.actor_role', true) v), $2, "
    "(SELECT pg_catalog.jsonb_object_agg(e.key, e.value) "
    "   FROM pg_catalog.jsonb_each(coalesce(n.j, o.j)) e "
    "  WHERE e.key OPERATOR(pg_catalog.=) ANY ($4)), "
    "$3, o.j OPERATOR(pg_catalog.->>) $5, n.j OPERATOR(pg_catalog.->>) $5, "
    "coalesce((SELECT pg_catalog.jsonb_object_agg(coalesce(b.key, a.key), "
    "                 pg_catalog.jsonb_build_array(coalesce(a.value, 'null'::pg_catalog.jsonb), "
    "                                              coalesce(b.value, 'null'::pg_catalog.jsonb))) "
    "   FROM pg_catalog.jsonb_each(o.j) a "
    "   FULL JOIN pg_catalog.jsonb_each(n.j) b ON a.key OPERATOR(pg_catalog.=) b.key "
    "  WHERE a.key IS NULL OR b.key IS NULL OR NOT (a.value OPERATOR(pg_catalog.=) b.value)), "
    "  '{}'::pg_catalog.jsonb) "
    "FROM (SELECT $6::pg_catalog.jsonb AS j) o, (SELECT $7::pg_catalog.jsonb AS j) n "
    "RETURNING id";

// Replaces the DELETE row written for the first half of a cross-partition UPDATE (see
// sg_audit_trigger).
constexpr const char* kAuditForgetSql =
    "DELETE FROM slotguard.audit WHERE id OPERATOR(pg_catalog.=) $1";

SPIPlanPtr audit_plan = nullptr;
SPIPlanPtr audit_forget_plan = nullptr;

// What the DELETE half of a cross-partition UPDATE leaves for the INSERT half (row_moves): the id
// of the DELETE row it wrote and the old row, as JSON text.
struct MovedRow {
  int64 audit_id;
  char* old_json;
};

Datum row_json(HeapTuple tuple, TupleDesc desc) {
  return DirectFunctionCall1(row_to_json, heap_copy_tuple_as_datum(tuple, desc));
}

Datum primary_key_names(Relation rel) {
  Bitmapset* pk = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);
  ArrayBuildState* astate = initArrayResult(TEXTOID, CurrentMemoryContext, false);
  int member = -1;
  while ((member = bms_next_member(pk, member)) >= 0) {
    const AttrNumber attnum = member + FirstLowInvalidHeapAttributeNumber;
    const char* name = NameStr(TupleDescAttr(RelationGetDescr(rel), attnum - 1)->attname);
    astate =
        accumArrayResult(astate, CStringGetTextDatum(name), false, TEXTOID, CurrentMemoryContext);
  }
  return makeArrayResult(astate, CurrentMemoryContext);
}

// Per-statement cache of the audit trigger (in fn_extra), allocated in fn_mcxt.
struct AuditCache {
  Oid tgoid;
  Oid user;
  Oid owner;
  Datum db_role, table, pk_names, version_column;
};

AuditCache* audit_cache(FunctionCallInfo fcinfo, TriggerData* td) {
  auto* cache = static_cast<AuditCache*>(fcinfo->flinfo->fn_extra);
  const Oid user = GetUserId();
  if (cache && cache->tgoid == td->tg_trigger->tgoid && cache->user == user) return cache;
  // The table the audit was enabled on: for a partition, the partitioned table (the trigger is a
  // clone of its trigger), so that all rows of one table are audited under one name.
  const Oid table = sg::moves::trigger_root(td->tg_trigger, RelationGetRelid(td->tg_relation));
  MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
  cache = static_cast<AuditCache*>(palloc0(sizeof(AuditCache)));
  cache->tgoid = td->tg_trigger->tgoid;
  cache->user = user;
  cache->owner = sg::util::audit_owner();
  cache->db_role = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(user, false)));
  cache->table = CStringGetTextDatum(sg::util::qualified_name(table));
  cache->pk_names = primary_key_names(td->tg_relation);
  cache->version_column = CStringGetTextDatum(td->tg_trigger->tgargs[0]);
  MemoryContextSwitchTo(old);
  fcinfo->flinfo->fn_extra = cache;
  return cache;
}

// audit_write runs one audit insert (as the audit table's owner) and returns the new row's id;
// forget, if not 0, is the id of a row to delete first.
int64 audit_write(AuditCache* cache, Datum* values, const char* nulls, int64 forget) {
  sg::util::OwnerScope owner;
  owner.enter(cache->owner);
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
  if (audit_plan == nullptr) {
    Oid types[7] = {NAMEOID, TEXTOID, TEXTOID, TEXTARRAYOID, TEXTOID, JSONOID, JSONOID};
    SPIPlanPtr plan = SPI_prepare(kAuditSql, 7, types);
    if (plan == nullptr) elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
    SPI_keepplan(plan);
    audit_plan = plan;
  }
  if (forget != 0) {
    if (audit_forget_plan == nullptr) {
      Oid types[1] = {INT8OID};
      SPIPlanPtr plan = SPI_prepare(kAuditForgetSql, 1, types);
      if (plan == nullptr)
        elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
      SPI_keepplan(plan);
      audit_forget_plan = plan;
    }
    Datum id = Int64GetDatum(forget);
    const int rc = SPI_execute_plan(audit_forget_plan, &id, nullptr, false, 0);
    if (rc != SPI_OK_DELETE) elog(ERROR, "audit delete failed: %s", SPI_result_code_string(rc));
  }
  const int rc = SPI_execute_plan(audit_plan, values, nulls, false, 0);
  if (rc != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
    elog(ERROR, "audit insert failed: %s", SPI_result_code_string(rc));
  if (SPI_gettypeid(SPI_tuptable->tupdesc, 1) != INT8OID)
    elog(ERROR, "slotguard.audit.id is not bigint: the table was altered");
  bool isnull;
  const Datum id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
  const int64 result = isnull ? 0 : DatumGetInt64(id);
  SPI_finish();
  owner.restore();
  return result;
}

}  // namespace

// slotguard.audit_trigger(version_column): AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW; appends
// one row to slotguard.audit in the writer's transaction, with the extension owner's rights. It
// reads no column by type: rows become JSON through their types' own output.
//
// Partitioned tables: the rows are audited under the partitioned table's name (the trigger is
// cloned onto each partition). An UPDATE that moves a row to another partition reaches the
// partitions as a DELETE and an INSERT (see row_moves.hpp); it is audited as the one UPDATE it
// is: the DELETE half writes its DELETE row as usual and remembers it, and the INSERT half
// replaces that row with one UPDATE row (old row, new row, changes). Should the INSERT half never
// come (the destination's trigger disabled), the DELETE row stays: nothing is lost.
SG_FUNCTION(sg_audit_trigger) {
  if (!CALLED_AS_TRIGGER(fcinfo))
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                "slotguard.audit_trigger() called outside a trigger");
  auto* td = reinterpret_cast<TriggerData*>(fcinfo->context);
  if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
      td->tg_trigger->tgnargs != 1)
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                "slotguard.audit_trigger(version_column) must fire AFTER ... FOR EACH ROW", "",
                "Install the trigger with slotguard.enable_versioning(..., audit => true).");
  Relation rel = td->tg_relation;
  TupleDesc desc = RelationGetDescr(rel);
  const char* op;
  HeapTuple old_tuple = nullptr, new_tuple = nullptr;
  if (TRIGGER_FIRED_BY_INSERT(td->tg_event)) {
    op = "INSERT";
    new_tuple = td->tg_trigtuple;
  } else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event)) {
    op = "UPDATE";
    old_tuple = td->tg_trigtuple;
    new_tuple = td->tg_newtuple;
  } else if (TRIGGER_FIRED_BY_DELETE(td->tg_event)) {
    op = "DELETE";
    old_tuple = td->tg_trigtuple;
  } else {
    return PointerGetDatum(nullptr);
  }
  AuditCache* cache = audit_cache(fcinfo, td);
  Datum values[7];
  char nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
  int64 forget = 0;
  values[0] = cache->db_role;
  values[1] = cache->table;
  values[3] = cache->pk_names;
  values[4] = cache->version_column;
  if (old_tuple)
    values[5] = row_json(old_tuple, desc);
  else
    nulls[5] = 'n';
  if (new_tuple)
    values[6] = row_json(new_tuple, desc);
  else
    nulls[6] = 'n';
  if (new_tuple && !old_tuple) {
    // The INSERT half of a cross-partition UPDATE?
    if (auto* moved = static_cast<MovedRow*>(
            sg::moves::claim(sg::moves::Kind::kAudit, td->tg_trigger, new_tuple))) {
      op = "UPDATE";
      forget = moved->audit_id;
      values[5] = CStringGetTextDatum(moved->old_json);
      nulls[5] = ' ';
    }
  }
  values[2] = CStringGetTextDatum(op);
  const int64 id = audit_write(cache, values, nulls, forget);
  if (old_tuple && !new_tuple && sg::moves::moved_out(old_tuple)) {
    const char* json = text_to_cstring(DatumGetTextPP(values[5]));
    MemoryContext mcxt;
    auto* moved = static_cast<MovedRow*>(sg::moves::remember(
        sg::moves::Kind::kAudit, td->tg_trigger, old_tuple, sizeof(MovedRow), &mcxt));
    moved->audit_id = id;
    moved->old_json = MemoryContextStrdup(mcxt, json);
  }
  return PointerGetDatum(nullptr);
}

namespace {

// ensure_column checks an existing column's type or adds the column; returns whether it added.
// An existing column without a default gets default_sql, so that an INSERT that leaves it out
// works as it does for a column slotguard added (ORMs create these columns without one).
bool ensure_column(Oid relid, const char* column, const Oid* allowed, int nallowed,
                   const char* add_sql, const char* default_sql, const char* type_name,
                   StringInfo alter) {
  const AttrNumber att = get_attnum(relid, column);
  if (att == InvalidAttrNumber) {
    appendStringInfo(alter, "%sADD COLUMN %s %s", alter->len ? ", " : "", quote_identifier(column),
                     add_sql);
    return true;
  }
  if (att < 0)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                psprintf("\"%s\" is a system column and cannot be used by slotguard", column));
  const Oid type = get_atttype(relid, att);
  bool type_ok = false;
  for (int i = 0; i < nallowed; i++)
    if (getBaseType(type) == allowed[i]) type_ok = true;
  if (type_ok) {
    bool has_default = true;
    HeapTuple tuple = SearchSysCacheAttNum(relid, att);
    if (HeapTupleIsValid(tuple)) {
      const auto* form = reinterpret_cast<Form_pg_attribute>(GETSTRUCT(tuple));
      has_default = form->atthasdef || form->attidentity != '\0' || form->attgenerated != '\0';
      ReleaseSysCache(tuple);
    }
    if (!has_default)
      appendStringInfo(alter, "%sALTER COLUMN %s SET DEFAULT %s", alter->len ? ", " : "",
                       quote_identifier(column), default_sql);
    return false;
  }
  throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
              psprintf("column \"%s\" of \"%s\" has type %s; slotguard needs %s", column,
                       get_rel_name(relid), format_type_be(type), type_name));
}

const char* text_arg(FunctionCallInfo fcinfo, int n, const char* what) {
  if (PG_ARGISNULL(n))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, psprintf("%s must not be NULL", what));
  return text_to_cstring(PG_GETARG_TEXT_PP(n));
}

bool bool_arg(FunctionCallInfo fcinfo, int n, const char* what) {
  if (PG_ARGISNULL(n))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, psprintf("%s must not be NULL", what));
  return PG_GETARG_BOOL(n);
}

Oid table_arg(FunctionCallInfo fcinfo) {
  if (PG_ARGISNULL(0)) throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "tbl must not be NULL");
  return PG_GETARG_OID(0);
}

}  // namespace

// slotguard.enable_versioning(tbl, version_column, version_type, timestamps, audit,
// require_version, version_style): adds the missing columns and (re)installs the triggers.
// Calling it again with other options reconfigures the table.
SG_FUNCTION(sg_enable_versioning) {
  const Oid relid = table_arg(fcinfo);
  if (PG_ARGISNULL(1))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "version_column must not be NULL");
  const char* column = NameStr(*PG_GETARG_NAME(1));
  const char* type = text_arg(fcinfo, 2, "version_type");
  const bool timestamps = bool_arg(fcinfo, 3, "timestamps");
  const bool audit = bool_arg(fcinfo, 4, "audit");
  const bool require = bool_arg(fcinfo, 5, "require_version");
  const char* style_text = text_arg(fcinfo, 6, "version_style");

  const bool uuid = strcmp(type, "uuid") == 0;
  if (!uuid && strcmp(type, "bigint") != 0)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, psprintf("unknown version_type \"%s\"", type), "",
                "version_type is 'bigint' or 'uuid'.");
  VersionStyle style;
  if (!sg::core::parse_version_style(style_text, &style))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                psprintf("unknown version_style \"%s\"", style_text), "",
                "version_style is 'assert' or 'increment'.");
  if (uuid && style == VersionStyle::kIncrement)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                "version_style 'increment' needs an integer version, not a uuid");
  if (column[0] == '\0')
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "version_column must not be empty");
  if (timestamps && (strcmp(column, "created_at") == 0 || strcmp(column, "updated_at") == 0))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                psprintf("version_column \"%s\" collides with the timestamp columns", column));

  sg::util::check_table(relid, true);
  LockRelationOid(relid, ShareRowExclusiveLock);
  sg::util::check_table(relid, true);  // it may have changed while we waited

  StringInfoData alter;
  initStringInfo(&alter);
  static const Oid kIntTypes[] = {INT8OID, INT4OID, INT2OID};
  static const Oid kUuidType[] = {UUIDOID};
  static const Oid kTimeTypes[] = {TIMESTAMPTZOID, TIMESTAMPOID};
  if (uuid)
    ensure_column(relid, column, kUuidType, 1, "uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid()",
                  "pg_catalog.gen_random_uuid()", "uuid", &alter);
  else
    ensure_column(relid, column, kIntTypes, 3, "bigint NOT NULL DEFAULT 0", "0",
                  "bigint, integer or smallint", &alter);
  if (timestamps) {
    ensure_column(relid, "created_at", kTimeTypes, 2,
                  "timestamp with time zone NOT NULL DEFAULT pg_catalog.now()", "pg_catalog.now()",
                  "timestamptz", &alter);
    ensure_column(relid, "updated_at", kTimeTypes, 2,
                  "timestamp with time zone NOT NULL DEFAULT pg_catalog.now()", "pg_catalog.now()",
                  "timestamptz", &alter);
  }
  const char* table = sg::util::qualified_name(relid);
  bool has_audit;
  {
    Relation rel = table_open(relid, NoLock);
    has_audit = sg::util::find_trigger(rel, kAuditTrigger) != nullptr;
    table_close(rel, NoLock);
  }

  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
  if (alter.len > 0) sg::util::spi_exec(psprintf("ALTER TABLE %s %s", table, alter.data));
  sg::util::spi_exec(
      psprintf("CREATE OR REPLACE TRIGGER %s BEFORE UPDATE ON %s FOR EACH ROW "
               "EXECUTE FUNCTION slotguard.version_trigger(%s, %s, %s, %s, %s)",
               kVersionTrigger, table, quote_literal_cstr(column), uuid ? "'uuid'" : "'bigint'",
               timestamps ? "'t'" : "'f'", require ? "'t'" : "'f'",
               style == VersionStyle::kAssert ? "'assert'" : "'increment'"));
  if (audit)
    sg::util::spi_exec(
        psprintf("CREATE OR REPLACE TRIGGER %s AFTER INSERT OR UPDATE OR DELETE "
                 "ON %s FOR EACH ROW EXECUTE FUNCTION slotguard.audit_trigger(%s)",
                 kAuditTrigger, table, quote_literal_cstr(column)));
  else if (has_audit)
    sg::util::spi_exec(psprintf("DROP TRIGGER %s ON %s", kAuditTrigger, table));
  SPI_finish();
  PG_RETURN_VOID();
}

// slotguard.disable_versioning(tbl): removes the triggers; the columns and their data stay.
SG_FUNCTION(sg_disable_versioning) {
  const Oid relid = table_arg(fcinfo);
  sg::util::check_table(relid, true);
  LockRelationOid(relid, ShareRowExclusiveLock);
  bool has_version, has_audit;
  {
    Relation rel = table_open(relid, NoLock);
    has_version = sg::util::find_trigger(rel, kVersionTrigger) != nullptr;
    has_audit = sg::util::find_trigger(rel, kAuditTrigger) != nullptr;
    table_close(rel, NoLock);
  }
  if (!has_version && !has_audit)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                psprintf("table \"%s\" is not versioned", get_rel_name(relid)));
  const char* table = sg::util::qualified_name(relid);
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
  if (has_version) sg::util::spi_exec(psprintf("DROP TRIGGER %s ON %s", kVersionTrigger, table));
  if (has_audit) sg::util::spi_exec(psprintf("DROP TRIGGER %s ON %s", kAuditTrigger, table));
  SPI_finish();
  PG_RETURN_VOID();
}

// ---------------------------------------------------------------------------------------------
// update_versioned: written in C++ (strings, containers, a JSON parser), so every PostgreSQL call
// below runs under guard().

namespace {

using json = nlohmann::json;

// TableInfo is what update_versioned needs to know of a table, copied out of the relcache.
struct TableInfo {
  std::string qualified;
  std::string version_column;
  bool uuid = false;
  VersionStyle style = VersionStyle::kAssert;
  bool soft_delete = false;
  std::vector<std::string> pk;       // primary-key column names
  std::vector<std::string> pk_eq;    // their equality operators, as OPERATOR(schema.=)
  std::string types;                 // the key and version columns' type oids, for the plan key
  std::vector<std::string> columns;  // all user columns
};

// Plans by table, changed columns and key form; bounded, flushed whole when full.
std::unordered_map<std::string, SPIPlanPtr> plans;
constexpr std::size_t kMaxPlans = 512;

TableInfo read_table(Oid relid) {
  TableInfo info;
  guard([&] { sg::util::check_table(relid, false); });
  Relation rel = guard([&] { return table_open(relid, RowExclusiveLock); });
  info.qualified = guard([&] { return sg::util::qualified_name(relid); });
  const Trigger* tg = sg::util::find_trigger(rel, kVersionTrigger);
  VersionConfig config;
  if (tg == nullptr || !decode_config(tg, &config)) {
    guard([&] { table_close(rel, NoLock); });
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                "table \"" + info.qualified + "\" is not versioned", "",
                "Call slotguard.enable_versioning() on it first.");
  }
  info.version_column = config.column;
  info.uuid = config.uuid;
  info.style = config.style;
  TupleDesc desc = RelationGetDescr(rel);
  for (int i = 0; i < desc->natts; i++) {
    Form_pg_attribute att = TupleDescAttr(desc, i);
    if (att->attisdropped) continue;
    info.columns.emplace_back(NameStr(att->attname));
    if (strcmp(NameStr(att->attname), "deleted_at") == 0) info.soft_delete = true;
  }
  Bitmapset* pk =
      guard([&] { return RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY); });
  int member = -1;
  while ((member = bms_next_member(pk, member)) >= 0) {
    Form_pg_attribute att = TupleDescAttr(desc, member + FirstLowInvalidHeapAttributeNumber - 1);
    info.pk.emplace_back(NameStr(att->attname));
    const Oid type = att->atttypid;
    const char* op = guard([&] {
      TypeCacheEntry* tc = lookup_type_cache(type, TYPECACHE_EQ_OPR);
      if (!OidIsValid(tc->eq_opr))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_FUNCTION),
                        errmsg("no equality operator for type %s", format_type_be(type))));
      return static_cast<const char*>(sg::util::operator_sql(tc->eq_opr));
    });
    info.pk_eq.emplace_back(op);
    info.types += std::to_string(type) + ",";
  }
  // The version column's type is part of the statement's meaning too ($3 is assigned to it).
  const int vatt = guard([&] { return SPI_fnumber(desc, info.version_column.c_str()); });
  if (vatt > 0) info.types += std::to_string(TupleDescAttr(desc, vatt - 1)->atttypid);
  guard([&] { table_close(rel, NoLock); });
  if (info.pk.empty())
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                "table \"" + info.qualified + "\" has no primary key", "",
                "update_versioned finds the row by its primary key.");
  return info;
}

// What update_versioned knows of each table, dropped whenever the relcache entry of the table is
// invalidated (ALTER TABLE, CREATE/DROP TRIGGER, ...), so the common call reads no catalog.
std::unordered_map<Oid, TableInfo> infos;
bool infos_callback_registered = false;

void forget_table(Datum, Oid relid) noexcept {
  if (relid == InvalidOid)
    infos.clear();
  else
    infos.erase(relid);
}

// A schema renamed sends no relcache invalidation for its tables: forget every table's qualified
// name (a statement naming the old one would find whatever table took that name).
void forget_tables_of_schemas(Datum, int, uint32) noexcept {
  infos.clear();
}

const TableInfo& table_info(Oid relid) {
  if (!infos_callback_registered) {
    guard([&] {
      CacheRegisterRelcacheCallback(forget_table, 0);
      CacheRegisterSyscacheCallback(NAMESPACEOID, forget_tables_of_schemas, 0);
    });
    infos_callback_registered = true;
  }
  if (auto it = infos.find(relid); it != infos.end()) {
    // The relation must still be a table we may lock; this also takes the lock the UPDATE needs.
    guard([&] { LockRelationOid(relid, RowExclusiveLock); });
    if (auto again = infos.find(relid); again != infos.end()) return again->second;
  }
  if (infos.size() > 1024) infos.clear();
  return infos.insert_or_assign(relid, read_table(relid)).first->second;
}

std::string quote_ident(const std::string& name) {
  return guard([&] { return quote_identifier(name.c_str()); });
}

// How deep key and changes may nest: far more than a row's values need (a jsonb column's value
// in changes), far less than what would strain the stack.
constexpr int kMaxJsonDepth = 1000;

json jsonb_arg(FunctionCallInfo fcinfo, int n, const char* what) {
  if (PG_ARGISNULL(n))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, std::string(what) + " must not be NULL");
  const char* text = guard([&] {
    Jsonb* jb = PG_GETARG_JSONB_P(n);
    return static_cast<const char*>(JsonbToCString(nullptr, &jb->root, VARSIZE(jb)));
  });
  // Bound the nesting before the document is parsed, copied or dumped (nlohmann's dump() and
  // copies recurse): PostgreSQL's jsonb input accepts as deep as max_stack_depth allows.
  int depth = 0;
  bool in_string = false;
  for (const char* p = text; *p; p++) {
    if (in_string) {
      if (*p == '\\' && p[1] != '\0')
        p++;
      else if (*p == '"')
        in_string = false;
    } else if (*p == '"') {
      in_string = true;
    } else if (*p == '[' || *p == '{') {
      if (++depth > kMaxJsonDepth)
        throw Error(ERRCODE_PROGRAM_LIMIT_EXCEEDED, std::string(what) + " is nested more than " +
                                                        std::to_string(kMaxJsonDepth) +
                                                        " levels deep");
    } else if (*p == ']' || *p == '}') {
      depth--;
    }
  }
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                std::string(what) + " is not usable JSON: " + e.what());
  }
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  for (const auto& x : v)
    if (x == s) return true;
  return false;
}

// update_versioned does the work of both overloads; `expected` is an int8 or uuid Datum.
Datum update_versioned(FunctionCallInfo fcinfo, bool uuid_overload) {
  const Oid relid = table_arg(fcinfo);
  const TableInfo info = table_info(relid);  // a copy: invalidation may drop the entry
  if (info.uuid != uuid_overload)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                "table \"" + info.qualified + "\" has " + (info.uuid ? "uuid" : "integer") +
                    " versions; pass expected_version as " + (info.uuid ? "a uuid" : "a bigint"));
  const json key = jsonb_arg(fcinfo, 1, "key");
  if (PG_ARGISNULL(2))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "expected_version must not be NULL");
  const json changes = jsonb_arg(fcinfo, 3, "changes");

  // Validate the key: an object naming exactly the primary key, or a scalar for a one-column key.
  const bool scalar_key = !key.is_object();
  if (scalar_key) {
    if (key.is_array() || key.is_null())
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                  "key must be a JSON object of primary-key columns or, for a one-column "
                  "primary key, a JSON scalar");
    if (info.pk.size() != 1)
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                  "table \"" + info.qualified + "\" has a primary key of " +
                      std::to_string(info.pk.size()) + " columns; key must be a JSON object");
  } else {
    for (const auto& [name, value] : key.items()) {
      if (!contains(info.columns, name))
        throw Error(ERRCODE_UNDEFINED_COLUMN, "column \"" + name + "\" of relation \"" +
                                                  info.qualified + "\" does not exist");
      if (!contains(info.pk, name))
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                    "key column \"" + name + "\" is not part of the primary key");
    }
    for (const auto& name : info.pk)
      if (!key.contains(name))
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                    "key lacks primary-key column \"" + name + "\"");
  }
  if (!changes.is_object())
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                "changes must be a JSON object of column -> value");
  std::vector<std::string> changed;
  for (const auto& [name, value] : changes.items()) {
    if (!contains(info.columns, name))
      throw Error(ERRCODE_UNDEFINED_COLUMN,
                  "column \"" + name + "\" of relation \"" + info.qualified + "\" does not exist");
    if (name == info.version_column)
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                  "changes may not set the version column \"" + name + "\"", "",
                  "Pass the version you read as expected_version.");
    if (contains(info.pk, name))
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                  "changes may not set primary-key column \"" + name + "\"");
    changed.push_back(name);
  }

  // The statement, cached per (table, changed columns, key form).
  // Everything the statement's text depends on is in the key: a table renamed, re-versioned
  // with another column or style, or replaced by another of the same name gets a new statement.
  std::string cache_key = std::to_string(relid) + "|" + info.qualified + "|" + info.version_column +
                          (scalar_key ? "|s|" : "|o|") + (uuid_overload ? "u|" : "b|") +
                          (info.style == VersionStyle::kIncrement ? "i|" : "a|") +
                          (info.soft_delete ? "d|" : "|");
  for (const auto& k : info.pk) cache_key += std::to_string(k.size()) + ":" + k;
  cache_key += "|" + info.types + "|";
  for (const auto& c : changed) cache_key += std::to_string(c.size()) + ":" + c;
  SPIPlanPtr plan = nullptr;
  if (auto it = plans.find(cache_key); it != plans.end()) plan = it->second;

  guard([&] {
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
  });
  if (plan == nullptr) {
    const std::string version = quote_ident(info.version_column);
    std::string sql = "UPDATE " + info.qualified + " AS sg_t SET ";
    for (const auto& c : changed) {
      const std::string q = quote_ident(c);
      sql += q + " = sg_c." + q + ", ";
    }
    sql += version + " = " +
           (info.style == VersionStyle::kIncrement ? "$3 OPERATOR(pg_catalog.+) 1" : "$3");
    sql += " FROM pg_catalog.jsonb_populate_record(NULL::" + info.qualified + ", $1) AS sg_c, ";
    if (scalar_key)
      sql += "pg_catalog.jsonb_populate_record(NULL::" + info.qualified +
             ", pg_catalog.jsonb_build_object(" +
             std::string(guard([&] { return quote_literal_cstr(info.pk[0].c_str()); })) +
             ", $2)) AS sg_k WHERE ";
    else
      sql += "pg_catalog.jsonb_populate_record(NULL::" + info.qualified + ", $2) AS sg_k WHERE ";
    for (std::size_t i = 0; i < info.pk.size(); i++) {
      const std::string q = quote_ident(info.pk[i]);
      if (i) sql += " AND ";
      sql += "sg_t." + q + " " + info.pk_eq[i] + " sg_k." + q;
    }
    if (info.soft_delete) sql += " AND sg_t.deleted_at IS NULL";
    sql += " RETURNING pg_catalog.to_jsonb(sg_t.*)";
    Oid types[3] = {JSONBOID, JSONBOID, static_cast<Oid>(uuid_overload ? UUIDOID : INT8OID)};
    plan = guard([&] {
      SPIPlanPtr p = SPI_prepare(sql.c_str(), 3, types);
      if (p == nullptr) elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
      SPI_keepplan(p);
      return p;
    });
    if (plans.size() >= kMaxPlans) {
      for (auto& [k, p] : plans) guard([&] { SPI_freeplan(p); });
      plans.clear();
    }
    plans.emplace(cache_key, plan);
  }
  if (!uuid_overload && info.style == VersionStyle::kIncrement &&
      PG_GETARG_INT64(2) == std::numeric_limits<int64>::max())
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "expected_version out of range");
  Datum values[3] = {PG_GETARG_DATUM(3), PG_GETARG_DATUM(1), PG_GETARG_DATUM(2)};
  const char nulls[3] = {' ', ' ', ' '};
  const int rc = guard([&] { return SPI_execute_plan(plan, values, nulls, false, 0); });
  if (rc != SPI_OK_UPDATE_RETURNING)
    throw Error(ERRCODE_INTERNAL_ERROR,
                std::string("update failed: ") + guard([&] { return SPI_result_code_string(rc); }));
  const uint64 found = SPI_processed;
  Datum result = 0;
  if (found > 0)
    result = guard([&] {
      bool isnull;
      Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
      return SPI_datumTransfer(d, false, -1);
    });
  guard([&] { SPI_finish(); });
  if (found == 0)
    throw Error(
        sg::errcodes::kNotFound, "row not found in \"" + info.qualified + "\"",
        "Key " + key.dump() +
            (info.soft_delete ? " matches no row that is not deleted." : " matches no row."))
        .on(relid);
  return result;
}

}  // namespace

// slotguard.update_versioned(tbl, key, expected_version bigint, changes) -> the new row.
SG_FUNCTION(sg_update_versioned) {
  return update_versioned(fcinfo, false);
}

// slotguard.update_versioned(tbl, key, expected_version uuid, changes) -> the new row.
SG_FUNCTION(sg_update_versioned_uuid) {
  return update_versioned(fcinfo, true);
}
