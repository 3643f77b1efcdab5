// version_trigger: slotguard.version_trigger(), the BEFORE UPDATE FOR EACH ROW trigger that makes
// every UPDATE of a versioned table a checked optimistic update (docs/sql-api.md "Versioned
// updates"). It runs for every updated row: it reads the version the UPDATE asserted (if it set
// the column), lets version_rules decide, and either raises SG001 (docs/errors.md) or stores the
// next version and maintains created_at / updated_at.
//
// The hot path reads its configuration from the trigger's arguments (see versioning.hpp) and
// resolves the columns it touches once per statement (TriggerCache, in fn_extra), checking that
// their types are ones it can read and write: the table may have been altered after
// enable_versioning, or the trigger created by hand. Written in PostgreSQL's style: palloc'd data,
// no C++ objects with destructors, except where the error is finally built and thrown.
#include "boundary.hpp"
#include "stats.hpp"
#include "util.hpp"
#include "versioning.hpp"

namespace {

using sg::Error;
using sg::core::VersionStyle;
using sg::core::VersionVerdict;
using sg::versioning::VersionConfig;

// ---- Reading and validating the columns, once per statement ----

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

// ColumnTypes is what column_ref accepts for one column, and what it says when the type is off.
struct ColumnTypes {
  const Oid* allowed;
  int nallowed;
  const char* type_name;
  const char* hint;
};

[[noreturn]] void raise_missing_column(TriggerData* td, const char* name) {
  const Oid relid = RelationGetRelid(td->tg_relation);
  throw Error(ERRCODE_UNDEFINED_COLUMN,
              psprintf("version column \"%s\" of relation \"%s\" does not exist", name,
                       sg::util::qualified_name(relid)),
              psprintf("Trigger \"%s\" names it; the column was dropped or renamed after "
                       "slotguard.enable_versioning(), or the trigger was created by hand.",
                       td->tg_trigger->tgname),
              "Call slotguard.enable_versioning() again to re-install the trigger, or "
              "slotguard.disable_versioning() to remove it.")
      .on(relid, name);
}

[[noreturn]] void raise_wrong_type(TriggerData* td, const char* name, Oid type,
                                   const ColumnTypes& types) {
  const Oid relid = RelationGetRelid(td->tg_relation);
  throw Error(
      ERRCODE_DATATYPE_MISMATCH,
      psprintf("column \"%s\" of relation \"%s\" has type %s, but the version "
               "trigger needs %s",
               name, sg::util::qualified_name(relid), format_type_be(type), types.type_name),
      psprintf("Trigger \"%s\" was installed for another type; the column was "
               "altered after slotguard.enable_versioning(), or the trigger was created "
               "by hand.",
               td->tg_trigger->tgname),
      types.hint)
      .on(relid, name);
}

// column_ref finds column `name` of the trigger's relation and checks that its type is one the
// trigger can read and write. Every Datum the trigger touches is read through a ColumnRef checked
// here: the table may have been altered (column dropped, renamed or retyped) after
// enable_versioning, or the trigger created by hand on any table. Absent columns give att 0 unless
// `required`.
ColumnRef column_ref(TriggerData* td, const char* name, bool required, const ColumnTypes& types) {
  TupleDesc desc = RelationGetDescr(td->tg_relation);
  ColumnRef ref = {InvalidAttrNumber, InvalidOid, InvalidOid};
  const int att = SPI_fnumber(desc, name);  // skips dropped columns; system columns are < 0
  if (att <= 0) {
    if (!required) return ref;
    raise_missing_column(td, name);
  }
  ref.att = static_cast<AttrNumber>(att);
  ref.type = TupleDescAttr(desc, att - 1)->atttypid;
  ref.base = getBaseType(ref.type);
  if (!sg::versioning::base_type_in(ref.base, types.allowed, types.nallowed))
    raise_wrong_type(td, name, ref.type, types);
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

bool cache_valid(const TriggerCache* cache, TriggerData* td) {
  TupleDesc desc = RelationGetDescr(td->tg_relation);
  return cache && cache->tgoid == td->tg_trigger->tgoid && still_valid(desc, cache->version) &&
         still_valid(desc, cache->created) && still_valid(desc, cache->updated);
}

VersionConfig trigger_config(TriggerData* td) {
  VersionConfig config;
  if (!sg::versioning::decode_config(td->tg_trigger, &config))
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                psprintf("trigger \"%s\" has bad arguments for slotguard.version_trigger()",
                         td->tg_trigger->tgname),
                "The arguments are (version_column, 'bigint' | 'uuid', 't' | 'f', 't' | 'f', "
                "'assert' | 'increment'), as slotguard.enable_versioning() writes them.",
                "Install the trigger with slotguard.enable_versioning().")
        .on(RelationGetRelid(td->tg_relation));
  return config;
}

// resolve_columns fills the ColumnRefs of a cache entry for config.
void resolve_columns(TriggerData* td, const VersionConfig& config, TriggerCache* out) {
  using sg::versioning::kIntTypes;
  using sg::versioning::kTimeTypes;
  using sg::versioning::kUuidType;
  const char* hint =
      "Change the column back to the type it had, or call "
      "slotguard.enable_versioning() again (it checks the types and re-installs "
      "the trigger), or slotguard.disable_versioning().";
  out->version = config.uuid ? column_ref(td, config.column, true, {kUuidType, 1, "uuid", hint})
                             : column_ref(td, config.column, true,
                                          {kIntTypes, 3, "bigint, integer or smallint", hint});
  out->created = {InvalidAttrNumber, InvalidOid, InvalidOid};
  out->updated = out->created;
  if (config.timestamps) {
    const ColumnTypes ts = {kTimeTypes, 2, "timestamptz or timestamp",
                            "Change the column back to timestamptz, or call "
                            "slotguard.enable_versioning() again, with timestamps => false if the "
                            "column is to keep its new type."};
    out->created = column_ref(td, "created_at", false, ts);
    out->updated = column_ref(td, "updated_at", false, ts);
  }
}

// trigger_cache returns the statement's cache entry, (re)building it when it is not for this
// trigger or the table's columns no longer match it.
TriggerCache* trigger_cache(FunctionCallInfo fcinfo, TriggerData* td) {
  auto* cache = static_cast<TriggerCache*>(fcinfo->flinfo->fn_extra);
  if (cache_valid(cache, td)) return cache;
  const VersionConfig config = trigger_config(td);
  TriggerCache fresh;
  resolve_columns(td, config, &fresh);
  if (cache == nullptr)
    cache = static_cast<TriggerCache*>(
        MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(TriggerCache)));
  cache->tgoid = td->tg_trigger->tgoid;
  cache->config = config;
  cache->config.column = MemoryContextStrdup(fcinfo->flinfo->fn_mcxt, config.column);
  cache->version = fresh.version;
  cache->created = fresh.created;
  cache->updated = fresh.updated;
  fcinfo->flinfo->fn_extra = cache;
  return cache;
}

// ---- Datums of the version and timestamp columns ----

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

// domain_checked returns value after checking the constraints of ref's domain, if it has one: a
// domain's constraints are not checked on what a BEFORE trigger writes.
Datum domain_checked(Datum value, const ColumnRef& ref) {
  if (ref.type != ref.base) domain_check(value, false, ref.type, nullptr, nullptr);
  return value;
}

// ---- The verdict ----

// The version column as the UPDATE found it (old) and as it would write it (new).
struct VersionRead {
  bool set;  // the UPDATE's SET list names the column
  Datum old_v, new_v;
  bool old_null, new_null;
};

VersionRead read_version(TriggerData* td, AttrNumber va) {
  TupleDesc desc = RelationGetDescr(td->tg_relation);
  VersionRead r;
  r.set = bms_is_member(va - FirstLowInvalidHeapAttributeNumber, td->tg_updatedcols);
  r.old_v = heap_getattr(td->tg_trigtuple, va, desc, &r.old_null);
  r.new_v = heap_getattr(td->tg_newtuple, va, desc, &r.new_null);
  return r;
}

// raise_conflict counts and raises SG001 for the row being updated: a stale version (expected is
// what the writer asserted) or, when required, an UPDATE that did not set the version. The DETAIL
// follows the error contract (common/error_contract.hpp, docs/errors.md). Every text PostgreSQL
// computes is palloc'd before the first C++ string is made.
[[noreturn]] void raise_conflict(TriggerData* td, const TriggerCache* c, const char* expected,
                                 const char* current, bool required) {
  Relation rel = td->tg_relation;
  const Oid relid = RelationGetRelid(rel);
  sg::stats::count(sg::stats::Scope::kTable, relid, sg::stats::kVersionConflicts);
  const char* table = sg::util::qualified_name(relid);
  const char* key = sg::util::row_key_json(rel, td->tg_trigtuple);
  if (key == nullptr) key = "(no primary key)";
  const char* column = quote_identifier(c->config.column);
  if (required) {
    const char* message = psprintf("update of \"%s\" does not set the version column \"%s\"", table,
                                   c->config.column);
    const char* hint =
        psprintf("Set the version you read: UPDATE ... SET %s = <version read> ...", column);
    throw Error(sg::errcodes::kVersionConflict, message,
                sg::errors::version_required_detail(table, key, current), hint)
        .on(relid, c->config.column);
  }
  const char* message = psprintf("version conflict on \"%s\"", table);
  const char* hint = c->config.style == VersionStyle::kIncrement
                         ? psprintf(
                               "Re-read the row and apply the change to its current version. The "
                               "table uses version_style 'increment': SET %s = <version read> + 1.",
                               column)
                         : "Re-read the row and apply the change to its current version.";
  throw Error(sg::errcodes::kVersionConflict, message,
              sg::errors::version_conflict_detail(table, key, expected, current), hint)
      .on(relid, c->config.column);
}

// next_uuid_version decides a uuid-versioned row: SG001, or a fresh UUID to store.
Datum next_uuid_version(TriggerData* td, const TriggerCache* c, const VersionRead& r) {
  bool equal = r.old_null == r.new_null;
  if (equal && !r.old_null)
    equal = memcmp(DatumGetUUIDP(r.old_v)->data, DatumGetUUIDP(r.new_v)->data, UUID_LEN) == 0;
  const auto kind = sg::core::decide_uuid(c->config.require, r.set, equal);
  if (kind != VersionVerdict::Kind::kAccept)
    raise_conflict(td, c, version_text(r.new_v, r.new_null, c->version.type),
                   version_text(r.old_v, r.old_null, c->version.type),
                   kind == VersionVerdict::Kind::kRequired);
  return random_uuid();
}

// next_int_version decides an integer-versioned row: SG001, or the version to store.
Datum next_int_version(TriggerData* td, const TriggerCache* c, const VersionRead& r) {
  const int64 stored = r.old_null ? 0 : int_value(r.old_v, c->version.base);
  const int64 given = r.new_null ? 0 : int_value(r.new_v, c->version.base);
  VersionVerdict verdict =
      sg::core::decide_bigint(c->config.style, c->config.require, r.set, stored, given);
  if (r.set && r.new_null && !r.old_null) verdict.kind = VersionVerdict::Kind::kStale;
  if (verdict.kind != VersionVerdict::Kind::kAccept)
    raise_conflict(td, c,
                   r.new_null ? "NULL"
                              : psprintf(INT64_FORMAT, verdict.kind == VersionVerdict::Kind::kStale
                                                           ? verdict.expected
                                                           : given),
                   version_text(r.old_v, r.old_null, c->version.type),
                   verdict.kind == VersionVerdict::Kind::kRequired);
  return int_datum(verdict.value, c->version.base);
}

// ---- The row written ----

// The columns the trigger sets in the new row: the version and, with timestamps, updated_at
// (now) and created_at (kept from the old row).
struct NewValues {
  int cols[3];
  Datum values[3];
  bool nulls[3];
  int n;
};

void add_timestamps(TriggerData* td, const TriggerCache* c, NewValues* out) {
  if (c->updated.att != InvalidAttrNumber) {
    out->cols[out->n] = c->updated.att;
    out->values[out->n] = domain_checked(now_datum(c->updated.base), c->updated);
    out->n++;
  }
  if (c->created.att != InvalidAttrNumber) {
    out->cols[out->n] = c->created.att;
    out->values[out->n] = heap_getattr(td->tg_trigtuple, c->created.att,
                                       RelationGetDescr(td->tg_relation), &out->nulls[out->n]);
    out->n++;
  }
}

TriggerData* version_trigger_data(FunctionCallInfo fcinfo) {
  auto* td = sg::util::trigger_data(fcinfo, "slotguard.version_trigger()");
  if (!TRIGGER_FIRED_BEFORE(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
      !TRIGGER_FIRED_BY_UPDATE(td->tg_event))
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                "slotguard.version_trigger() must fire BEFORE UPDATE FOR EACH ROW");
  return td;
}

}  // namespace

namespace sg::versioning {

bool base_type_in(Oid base, const Oid* allowed, int n) {
  for (int i = 0; i < n; i++)
    if (base == allowed[i]) return true;
  return false;
}

namespace {

using sg::core::VersionStyle;

// flag reads a boolean trigger argument as enable_versioning writes it ('t' / 'f').
bool flag(const char* s, bool* out) {
  if (strcmp(s, "t") == 0 || strcmp(s, "f") == 0) {
    *out = s[0] == 't';
    return true;
  }
  return false;
}

}  // namespace

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

}  // namespace sg::versioning

// slotguard.version_trigger(): BEFORE UPDATE FOR EACH ROW on a versioned table. Checks the
// version the UPDATE asserted (if it set the column), bumps it, and maintains the timestamps.
SG_FUNCTION(sg_version_trigger) {
  TriggerData* td = version_trigger_data(fcinfo);
  const TriggerCache* c = trigger_cache(fcinfo, td);
  const VersionRead r = read_version(td, c->version.att);
  NewValues out = {{}, {}, {false, false, false}, 0};
  const Datum version = c->config.uuid ? next_uuid_version(td, c, r) : next_int_version(td, c, r);
  out.values[0] = domain_checked(version, c->version);
  out.cols[0] = c->version.att;
  out.n = 1;
  if (c->config.timestamps) add_timestamps(td, c, &out);
  sg::stats::count(sg::stats::Scope::kTable, RelationGetRelid(td->tg_relation),
                   sg::stats::kVersionedUpdates);
  return PointerGetDatum(heap_modify_tuple_by_cols(
      td->tg_newtuple, RelationGetDescr(td->tg_relation), out.n, out.cols, out.values, out.nulls));
}
