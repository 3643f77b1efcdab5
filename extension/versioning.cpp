// versioning: enable_versioning / disable_versioning, the DDL of versioned updates
// (docs/sql-api.md "Versioned updates"). Run once per table by its owner: enable_versioning adds
// the missing version (and timestamp) columns and (re)installs the version trigger
// (version_trigger.cpp) and, with audit => true, the audit trigger (audit.cpp), both with their
// configuration in their arguments (see versioning.hpp); disable_versioning removes them. Together
// they make every UPDATE of a versioned table a checked optimistic update.
//
// Written in PostgreSQL's style: palloc'd data, no C++ objects with destructors.
#include "boundary.hpp"
#include "util.hpp"
#include "versioning.hpp"

namespace {

using sg::Error;
using sg::core::VersionStyle;
using sg::versioning::kAuditTrigger;
using sg::versioning::kVersionTrigger;

// has_default says whether column att of relid has a default (or is an identity or generated
// column): an INSERT that leaves it out does not write NULL.
bool has_default(Oid relid, AttrNumber att) {
  bool result = true;
  HeapTuple tuple = SearchSysCacheAttNum(relid, att);
  if (HeapTupleIsValid(tuple)) {
    const auto* form = reinterpret_cast<Form_pg_attribute>(GETSTRUCT(tuple));
    result = form->atthasdef || form->attidentity != '\0' || form->attgenerated != '\0';
    ReleaseSysCache(tuple);
  }
  return result;
}

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
  if (sg::versioning::base_type_in(getBaseType(type), allowed, nallowed)) {
    if (!has_default(relid, att))
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

// Options is enable_versioning's arguments after tbl, read and validated.
struct Options {
  const char* column;
  bool uuid;
  bool timestamps;
  bool audit;
  bool require;
  VersionStyle style;
};

// validate_options checks the options read so far against each other and sets o->style.
void validate_options(Options* o, const char* type, const char* style_text) {
  if (!o->uuid && strcmp(type, "bigint") != 0)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, psprintf("unknown version_type \"%s\"", type), "",
                "version_type is 'bigint' or 'uuid'.");
  if (!sg::core::parse_version_style(style_text, &o->style))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                psprintf("unknown version_style \"%s\"", style_text), "",
                "version_style is 'assert' or 'increment'.");
  if (o->uuid && o->style == VersionStyle::kIncrement)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                "version_style 'increment' needs an integer version, not a uuid");
  if (o->column[0] == '\0')
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "version_column must not be empty");
  if (o->timestamps &&
      (strcmp(o->column, "created_at") == 0 || strcmp(o->column, "updated_at") == 0))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                psprintf("version_column \"%s\" collides with the timestamp columns", o->column));
}

// read_options reads enable_versioning's arguments 1..6.
Options read_options(FunctionCallInfo fcinfo) {
  if (PG_ARGISNULL(1))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "version_column must not be NULL");
  Options o;
  o.column = NameStr(*PG_GETARG_NAME(1));
  const char* type = text_arg(fcinfo, 2, "version_type");
  o.timestamps = bool_arg(fcinfo, 3, "timestamps");
  o.audit = bool_arg(fcinfo, 4, "audit");
  o.require = bool_arg(fcinfo, 5, "require_version");
  const char* style_text = text_arg(fcinfo, 6, "version_style");
  o.uuid = strcmp(type, "uuid") == 0;
  validate_options(&o, type, style_text);
  return o;
}

// column_changes returns the ALTER TABLE actions (possibly none) that give relid the columns the
// options need.
char* column_changes(Oid relid, const Options& o) {
  using sg::versioning::kIntTypes;
  using sg::versioning::kTimeTypes;
  using sg::versioning::kUuidType;
  StringInfoData alter;
  initStringInfo(&alter);
  if (o.uuid)
    ensure_column(relid, o.column, kUuidType, 1,
                  "uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid()",
                  "pg_catalog.gen_random_uuid()", "uuid", &alter);
  else
    ensure_column(relid, o.column, kIntTypes, 3, "bigint NOT NULL DEFAULT 0", "0",
                  "bigint, integer or smallint", &alter);
  if (o.timestamps) {
    ensure_column(relid, "created_at", kTimeTypes, 2,
                  "timestamp with time zone NOT NULL DEFAULT pg_catalog.now()", "pg_catalog.now()",
                  "timestamptz", &alter);
    ensure_column(relid, "updated_at", kTimeTypes, 2,
                  "timestamp with time zone NOT NULL DEFAULT pg_catalog.now()", "pg_catalog.now()",
                  "timestamptz", &alter);
  }
  return alter.data;
}

// Installed says which of the two triggers a table has.
struct Installed {
  bool version;
  bool audit;
};

Installed installed_triggers(Oid relid) {
  Relation rel = table_open(relid, NoLock);
  const Installed result = {sg::util::find_trigger(rel, kVersionTrigger) != nullptr,
                            sg::util::find_trigger(rel, kAuditTrigger) != nullptr};
  table_close(rel, NoLock);
  return result;
}

// install runs enable_versioning's statements: the ALTER TABLE (if any), the version trigger,
// and the audit trigger created or dropped.
void install(const char* table, const Options& o, const char* alter, bool has_audit) {
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
  if (alter[0] != '\0') sg::util::spi_exec(psprintf("ALTER TABLE %s %s", table, alter));
  sg::util::spi_exec(
      psprintf("CREATE OR REPLACE TRIGGER %s BEFORE UPDATE ON %s FOR EACH ROW "
               "EXECUTE FUNCTION slotguard.version_trigger(%s, %s, %s, %s, %s)",
               kVersionTrigger, table, quote_literal_cstr(o.column), o.uuid ? "'uuid'" : "'bigint'",
               o.timestamps ? "'t'" : "'f'", o.require ? "'t'" : "'f'",
               o.style == VersionStyle::kAssert ? "'assert'" : "'increment'"));
  if (o.audit)
    sg::util::spi_exec(
        psprintf("CREATE OR REPLACE TRIGGER %s AFTER INSERT OR UPDATE OR DELETE "
                 "ON %s FOR EACH ROW EXECUTE FUNCTION slotguard.audit_trigger(%s)",
                 kAuditTrigger, table, quote_literal_cstr(o.column)));
  else if (has_audit)
    sg::util::spi_exec(psprintf("DROP TRIGGER %s ON %s", kAuditTrigger, table));
  SPI_finish();
}

}  // namespace

namespace sg::versioning {

Oid table_arg(FunctionCallInfo fcinfo) {
  if (PG_ARGISNULL(0)) throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "tbl must not be NULL");
  return PG_GETARG_OID(0);
}

}  // namespace sg::versioning

// slotguard.enable_versioning(tbl, version_column, version_type, timestamps, audit,
// require_version, version_style): adds the missing columns and (re)installs the triggers.
// Calling it again with other options reconfigures the table.
SG_FUNCTION(sg_enable_versioning) {
  const Oid relid = sg::versioning::table_arg(fcinfo);
  const Options options = read_options(fcinfo);
  sg::util::check_table(relid, true);
  LockRelationOid(relid, ShareRowExclusiveLock);
  sg::util::check_table(relid, true);  // it may have changed while we waited
  const char* alter = column_changes(relid, options);
  const char* table = sg::util::qualified_name(relid);
  install(table, options, alter, installed_triggers(relid).audit);
  PG_RETURN_VOID();
}

// slotguard.disable_versioning(tbl): removes the triggers; the columns and their data stay.
SG_FUNCTION(sg_disable_versioning) {
  const Oid relid = sg::versioning::table_arg(fcinfo);
  sg::util::check_table(relid, true);
  LockRelationOid(relid, ShareRowExclusiveLock);
  const Installed has = installed_triggers(relid);
  if (!has.version && !has.audit)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                psprintf("table \"%s\" is not versioned", get_rel_name(relid)));
  const char* table = sg::util::qualified_name(relid);
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
  if (has.version) sg::util::spi_exec(psprintf("DROP TRIGGER %s ON %s", kVersionTrigger, table));
  if (has.audit) sg::util::spi_exec(psprintf("DROP TRIGGER %s ON %s", kAuditTrigger, table));
  SPI_finish();
  PG_RETURN_VOID();
}
