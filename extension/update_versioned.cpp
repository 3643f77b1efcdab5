// update_versioned: slotguard.update_versioned(tbl, key, expected_version, changes), the
// optimistic update of one row of a versioned table by primary key, for callers that hold the
// row as JSON (docs/sql-api.md "Versioned updates"). It runs one UPDATE ... SET version =
// expected_version, so that the version trigger (version_trigger.cpp) decides as for any other
// writer; a key that matches no row gives SG002 (docs/errors.md).
//
// Each call: the table's description (TableInfo, cached per backend until the table's relcache
// entry is invalidated), the arguments checked against it, then one prepared UPDATE per (table,
// changed columns, key form), kept and reused. The statement reads key and changes through
// jsonb_populate_record, so each value is converted by its column's own input function.
//
// Written in C++ (strings, containers, a JSON parser): every PostgreSQL call that can raise an
// error runs under guard(), through the named wrappers below; what runs unguarded only reads
// structures already in hand (argument macros, tuple descriptors, bms_next_member, the trigger
// descriptor).
#include "boundary.hpp"
#include "util.hpp"
#include "versioning.hpp"

#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using json = nlohmann::json;
using sg::Error;
using sg::guard;
using sg::core::VersionStyle;

// ---- Guarded PostgreSQL calls: each runs one call under guard() and returns plain data ----

void check_table(Oid relid) {
  guard([&] { sg::util::check_table(relid, false); });
}

Relation open_table(Oid relid) {
  return guard([&] { return table_open(relid, RowExclusiveLock); });
}

void close_table(Relation rel) {
  guard([&] { table_close(rel, NoLock); });
}

// lock_table takes the lock the UPDATE needs; it also checks the relation still exists.
void lock_table(Oid relid) {
  guard([&] { LockRelationOid(relid, RowExclusiveLock); });
}

std::string qualified_name(Oid relid) {
  return guard([&] { return sg::util::qualified_name(relid); });
}

Bitmapset* primary_key_columns(Relation rel) {
  return guard([&] { return RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY); });
}

// equality_operator_pg returns OPERATOR(schema.=) of type's default equality operator, or raises
// 42883 when it has none. PostgreSQL-style: call it through equality_operator.
const char* equality_operator_pg(Oid type) {
  TypeCacheEntry* tc = lookup_type_cache(type, TYPECACHE_EQ_OPR);
  if (!OidIsValid(tc->eq_opr))
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_FUNCTION),
                    errmsg("no equality operator for type %s", format_type_be(type))));
  return sg::util::operator_sql(tc->eq_opr);
}

std::string equality_operator(Oid type) {
  return guard([&] { return equality_operator_pg(type); });
}

int column_number(TupleDesc desc, const std::string& name) {
  return guard([&] { return SPI_fnumber(desc, name.c_str()); });
}

std::string quote_ident(const std::string& name) {
  return guard([&] { return quote_identifier(name.c_str()); });
}

std::string quote_literal(const std::string& text) {
  return guard([&] { return quote_literal_cstr(text.c_str()); });
}

// jsonb_text returns argument n (a jsonb, not NULL) as JSON text.
const char* jsonb_text(FunctionCallInfo fcinfo, int n) {
  return guard([&] {
    Jsonb* jb = PG_GETARG_JSONB_P(n);
    return static_cast<const char*>(JsonbToCString(nullptr, &jb->root, VARSIZE(jb)));
  });
}

void spi_connect() {
  guard([&] {
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
  });
}

void spi_finish() {
  guard([&] { SPI_finish(); });
}

// prepare_kept returns sql prepared with nargs parameters of types and kept (SPI_keepplan).
SPIPlanPtr prepare_kept(const std::string& sql, int nargs, Oid* types) {
  return guard([&] {
    SPIPlanPtr p = SPI_prepare(sql.c_str(), nargs, types);
    if (p == nullptr) elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
    SPI_keepplan(p);
    return p;
  });
}

void free_plan(SPIPlanPtr plan) {
  guard([&] { SPI_freeplan(plan); });
}

int execute_plan(SPIPlanPtr plan, Datum* values, const char* nulls) {
  return guard([&] { return SPI_execute_plan(plan, values, nulls, false, 0); });
}

std::string result_code_string(int rc) {
  return guard([&] { return SPI_result_code_string(rc); });
}

// first_result_value returns column 1 of the first row SPI returned, copied out of SPI's memory.
Datum first_result_value() {
  return guard([&] {
    bool isnull;
    Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    return SPI_datumTransfer(d, false, -1);
  });
}

// ---- What update_versioned knows of a table ----

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

// read_columns fills info.columns and info.soft_delete (a deleted_at column) from desc.
void read_columns(TupleDesc desc, TableInfo* info) {
  for (int i = 0; i < desc->natts; i++) {
    Form_pg_attribute att = TupleDescAttr(desc, i);
    if (att->attisdropped) continue;
    info->columns.emplace_back(NameStr(att->attname));
    if (strcmp(NameStr(att->attname), "deleted_at") == 0) info->soft_delete = true;
  }
}

// read_key fills info.pk, info.pk_eq and info.types from the table's primary key and version
// column.
void read_key(Relation rel, TableInfo* info) {
  TupleDesc desc = RelationGetDescr(rel);
  Bitmapset* pk = primary_key_columns(rel);
  int member = -1;
  while ((member = bms_next_member(pk, member)) >= 0) {
    Form_pg_attribute att = TupleDescAttr(desc, member + FirstLowInvalidHeapAttributeNumber - 1);
    info->pk.emplace_back(NameStr(att->attname));
    info->pk_eq.push_back(equality_operator(att->atttypid));
    info->types += std::to_string(att->atttypid) + ",";
  }
  // The version column's type is part of the statement's meaning too ($3 is assigned to it).
  const int vatt = column_number(desc, info->version_column);
  if (vatt > 0) info->types += std::to_string(TupleDescAttr(desc, vatt - 1)->atttypid);
}

TableInfo read_table(Oid relid) {
  TableInfo info;
  check_table(relid);
  Relation rel = open_table(relid);
  info.qualified = qualified_name(relid);
  const Trigger* tg = sg::util::find_trigger(rel, sg::versioning::kVersionTrigger);
  sg::versioning::VersionConfig config;
  if (tg == nullptr || !sg::versioning::decode_config(tg, &config)) {
    close_table(rel);
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                "table \"" + info.qualified + "\" is not versioned", "",
                "Call slotguard.enable_versioning() on it first.");
  }
  info.version_column = config.column;
  info.uuid = config.uuid;
  info.style = config.style;
  read_columns(RelationGetDescr(rel), &info);
  read_key(rel, &info);
  close_table(rel);
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

void register_callbacks() {
  guard([&] {
    CacheRegisterRelcacheCallback(forget_table, 0);
    CacheRegisterSyscacheCallback(NAMESPACEOID, forget_tables_of_schemas, 0);
  });
}

const TableInfo& table_info(Oid relid) {
  if (!infos_callback_registered) {
    register_callbacks();
    infos_callback_registered = true;
  }
  if (auto it = infos.find(relid); it != infos.end()) {
    // The relation must still be a table we may lock; this also takes the lock the UPDATE needs.
    lock_table(relid);
    if (auto again = infos.find(relid); again != infos.end()) return again->second;
  }
  if (infos.size() > 1024) infos.clear();
  return infos.insert_or_assign(relid, read_table(relid)).first->second;
}

// ---- The arguments ----

// How deep key and changes may nest: far more than a row's values need (a jsonb column's value
// in changes), far less than what would strain the stack.
constexpr int kMaxJsonDepth = 1000;

// check_depth bounds the nesting of a JSON text before the document is parsed, copied or dumped
// (nlohmann's dump() and copies recurse): PostgreSQL's jsonb input accepts as deep as
// max_stack_depth allows.
void check_depth(const char* text, const char* what) {
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
}

json jsonb_arg(FunctionCallInfo fcinfo, int n, const char* what) {
  if (PG_ARGISNULL(n))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, std::string(what) + " must not be NULL");
  const char* text = jsonb_text(fcinfo, n);
  check_depth(text, what);
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

[[noreturn]] void raise_no_column(const TableInfo& info, const std::string& name) {
  throw Error(ERRCODE_UNDEFINED_COLUMN,
              "column \"" + name + "\" of relation \"" + info.qualified + "\" does not exist");
}

void check_overload(const TableInfo& info, bool uuid_overload) {
  if (info.uuid != uuid_overload)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                "table \"" + info.qualified + "\" has " + (info.uuid ? "uuid" : "integer") +
                    " versions; pass expected_version as " + (info.uuid ? "a uuid" : "a bigint"));
}

// check_key validates the key: an object naming exactly the primary key, or a scalar for a
// one-column key. Returns whether it is a scalar.
bool check_key(const TableInfo& info, const json& key) {
  if (!key.is_object()) {
    if (key.is_array() || key.is_null())
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                  "key must be a JSON object of primary-key columns or, for a one-column "
                  "primary key, a JSON scalar");
    if (info.pk.size() != 1)
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                  "table \"" + info.qualified + "\" has a primary key of " +
                      std::to_string(info.pk.size()) + " columns; key must be a JSON object");
    return true;
  }
  for (const auto& [name, value] : key.items()) {
    if (!contains(info.columns, name)) raise_no_column(info, name);
    if (!contains(info.pk, name))
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                  "key column \"" + name + "\" is not part of the primary key");
  }
  for (const auto& name : info.pk)
    if (!key.contains(name))
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "key lacks primary-key column \"" + name + "\"");
  return false;
}

// changed_columns validates changes and returns the columns it sets, in its order.
std::vector<std::string> changed_columns(const TableInfo& info, const json& changes) {
  if (!changes.is_object())
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                "changes must be a JSON object of column -> value");
  std::vector<std::string> changed;
  for (const auto& [name, value] : changes.items()) {
    if (!contains(info.columns, name)) raise_no_column(info, name);
    if (name == info.version_column)
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                  "changes may not set the version column \"" + name + "\"", "",
                  "Pass the version you read as expected_version.");
    if (contains(info.pk, name))
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                  "changes may not set primary-key column \"" + name + "\"");
    changed.push_back(name);
  }
  return changed;
}

// ---- The statement ----

// Shape is what the UPDATE's text depends on besides the table.
struct Shape {
  bool scalar_key;
  bool uuid;
  std::vector<std::string> changed;
};

// Plans by table, changed columns and key form; bounded, flushed whole when full.
std::unordered_map<std::string, SPIPlanPtr> plans;
constexpr std::size_t kMaxPlans = 512;

// plan_key names the statement. Everything its text depends on is in the key: a table renamed,
// re-versioned with another column or style, or replaced by another of the same name gets a new
// statement.
std::string plan_key(Oid relid, const TableInfo& info, const Shape& s) {
  std::string key = std::to_string(relid) + "|" + info.qualified + "|" + info.version_column +
                    (s.scalar_key ? "|s|" : "|o|") + (s.uuid ? "u|" : "b|") +
                    (info.style == VersionStyle::kIncrement ? "i|" : "a|") +
                    (info.soft_delete ? "d|" : "|");
  for (const auto& k : info.pk) key += std::to_string(k.size()) + ":" + k;
  key += "|" + info.types + "|";
  for (const auto& c : s.changed) key += std::to_string(c.size()) + ":" + c;
  return key;
}

// update_sql is the statement: $1 changes, $2 key, $3 expected version; it returns the new row.
std::string update_sql(const TableInfo& info, const Shape& s) {
  const std::string version = quote_ident(info.version_column);
  std::string sql = "UPDATE " + info.qualified + " AS sg_t SET ";
  for (const auto& c : s.changed) {
    const std::string q = quote_ident(c);
    sql += q + " = sg_c." + q + ", ";
  }
  sql += version + " = " +
         (info.style == VersionStyle::kIncrement ? "$3 OPERATOR(pg_catalog.+) 1" : "$3");
  sql += " FROM pg_catalog.jsonb_populate_record(NULL::" + info.qualified + ", $1) AS sg_c, ";
  if (s.scalar_key)
    sql += "pg_catalog.jsonb_populate_record(NULL::" + info.qualified +
           ", pg_catalog.jsonb_build_object(" + quote_literal(info.pk[0]) + ", $2)) AS sg_k WHERE ";
  else
    sql += "pg_catalog.jsonb_populate_record(NULL::" + info.qualified + ", $2) AS sg_k WHERE ";
  for (std::size_t i = 0; i < info.pk.size(); i++) {
    const std::string q = quote_ident(info.pk[i]);
    if (i) sql += " AND ";
    sql += "sg_t." + q + " " + info.pk_eq[i] + " sg_k." + q;
  }
  if (info.soft_delete) sql += " AND sg_t.deleted_at IS NULL";
  sql += " RETURNING pg_catalog.to_jsonb(sg_t.*)";
  return sql;
}

// new_plan prepares the statement (SPI connected), keeps it and files it under key.
SPIPlanPtr new_plan(const std::string& key, const TableInfo& info, const Shape& s) {
  Oid types[3] = {JSONBOID, JSONBOID, static_cast<Oid>(s.uuid ? UUIDOID : INT8OID)};
  SPIPlanPtr plan = prepare_kept(update_sql(info, s), 3, types);
  if (plans.size() >= kMaxPlans) {
    for (auto& [k, p] : plans) free_plan(p);
    plans.clear();
  }
  plans.emplace(key, plan);
  return plan;
}

// run_update executes the plan (SPI connected) and returns the new row, or 0 when *found is 0.
Datum run_update(SPIPlanPtr plan, FunctionCallInfo fcinfo, uint64* found) {
  Datum values[3] = {PG_GETARG_DATUM(3), PG_GETARG_DATUM(1), PG_GETARG_DATUM(2)};
  const char nulls[3] = {' ', ' ', ' '};
  const int rc = execute_plan(plan, values, nulls);
  if (rc != SPI_OK_UPDATE_RETURNING)
    throw Error(ERRCODE_INTERNAL_ERROR, "update failed: " + result_code_string(rc));
  *found = SPI_processed;
  return *found > 0 ? first_result_value() : 0;
}

// update_versioned does the work of both overloads; `expected` is an int8 or uuid Datum.
Datum update_versioned(FunctionCallInfo fcinfo, bool uuid_overload) {
  const Oid relid = sg::versioning::table_arg(fcinfo);
  const TableInfo info = table_info(relid);  // a copy: invalidation may drop the entry
  check_overload(info, uuid_overload);
  const json key = jsonb_arg(fcinfo, 1, "key");
  if (PG_ARGISNULL(2))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "expected_version must not be NULL");
  const json changes = jsonb_arg(fcinfo, 3, "changes");
  const bool scalar_key = check_key(info, key);
  const Shape shape = {scalar_key, uuid_overload, changed_columns(info, changes)};
  const std::string name = plan_key(relid, info, shape);
  SPIPlanPtr plan = nullptr;
  if (auto it = plans.find(name); it != plans.end()) plan = it->second;
  spi_connect();
  if (plan == nullptr) plan = new_plan(name, info, shape);
  if (!uuid_overload && info.style == VersionStyle::kIncrement &&
      PG_GETARG_INT64(2) == std::numeric_limits<int64>::max())
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "expected_version out of range");
  uint64 found = 0;
  const Datum result = run_update(plan, fcinfo, &found);
  spi_finish();
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
