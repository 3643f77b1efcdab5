// overlap_rules: the DDL of overlap rules, run when a rule is added or dropped and when a table
// with rules is altered: add_overlap_rule (CHECK, index, catalog row, trigger, then the validation
// of the existing rows), drop_overlap_rule, the event trigger that validates an attached
// partition and refuses inheritance children, and period_is_ordered (the CHECK of a period).
//
// A rule is written only to slotguard.overlap_rule_defs, as the extension's owner, after every
// part is validated (overlap_cache.cpp reads it back); its check runs as the owner of its table
// (overlap_statement.cpp).
//
// Written in PostgreSQL's style: palloc'd data, no C++ objects with destructors.
#include "boundary.hpp"
#include "overlap.hpp"
#include "util.hpp"

using namespace sg::overlap;
using sg::Error;

namespace {

// ---- validation of existing rows ------------------------------------------------------------

// Violations is what validate_rows found: how many rows violate the rule, the first five listed.
struct Violations {
  int64 count;
  StringInfoData text;
};

// validate_batch checks the rows of one fetch of validate_rows' cursor (SPI_tuptable: ctid, row,
// key, tableoid), each as an INSERT of it would be checked, with snapshot.
void validate_batch(const Rule& r, SPIPlanPtr plan, Oid row_type, Snapshot snapshot,
                    Violations* v) {
  SPITupleTable* rows = SPI_tuptable;
  const uint64 n = SPI_processed;
  if (rows->tupdesc->natts != 4 || SPI_gettypeid(rows->tupdesc, 1) != TIDOID ||
      SPI_gettypeid(rows->tupdesc, 2) != row_type || SPI_gettypeid(rows->tupdesc, 3) != JSONBOID ||
      SPI_gettypeid(rows->tupdesc, 4) != OIDOID)
    elog(ERROR, "slotguard: unexpected columns while validating overlap rule \"%s\"", r.name);
  for (uint64 i = 0; i < n; i++) {
    CHECK_FOR_INTERRUPTS();
    bool isnull;
    ItemPointerData self = *reinterpret_cast<ItemPointer>(
        DatumGetPointer(SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull)));
    const Datum row = SPI_getbinval(rows->vals[i], rows->tupdesc, 2, &isnull);
    const Oid self_table =
        DatumGetObjectId(SPI_getbinval(rows->vals[i], rows->tupdesc, 4, &isnull));
    run_check(plan, row, &self, self_table, snapshot);
    SPITupleTable* found = SPI_tuptable;
    const Sweep s = sweep(r, found, SPI_processed);
    if (s.found) {
      // Rows whose own key is NULL or that fail the predicate were not returned as conflicting
      // candidates by the statement (it filters the candidate too).
      v->count++;
      if (v->count <= 5) {
        const int at = s.first >= 0 ? s.first : 0;
        appendStringInfo(&v->text, "%s%s overlaps %s during %s", v->text.len ? "; " : "",
                         SPI_getvalue(rows->vals[i], rows->tupdesc, 3),
                         SPI_getvalue(found->vals[at], found->tupdesc, kColKey),
                         SPI_getvalue(found->vals[at], found->tupdesc, kColPeriod));
      }
    }
    SPI_freetuptable(found);
  }
  SPI_freetuptable(rows);
}

// validate_rows checks every row of table source (the rule's table, or a partition being
// attached to it) against rule r, as an INSERT of it would be checked, with a snapshot taken now —
// after the caller's lock — so rows committed while it waited are checked too (as ALTER TABLE
// validates a constraint). Raises 23P01 listing the first violations. SPI is connected.
void validate_rows(Oid source, const Rule& r) {
  Relation rel = table_open(source, AccessShareLock);
  CheckScope scope;
  scope.enter(rel_owner(r.tbl), true);
  SPIPlanPtr plan = prepare_check(rel, r);
  const Oid row_type = rel->rd_rel->reltype;
  const char* select = psprintf("SELECT t.ctid, t, %s, t.tableoid FROM %s t",
                                key_json_sql(rel, "t"), sg::util::qualified_name(source));
  Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
  PushActiveSnapshot(snapshot);
  Portal cursor = SPI_cursor_open_with_args(nullptr, select, 0, nullptr, nullptr, nullptr, true, 0);
  PopActiveSnapshot();
  Violations v;
  v.count = 0;
  initStringInfo(&v.text);
  for (;;) {
    SPI_cursor_fetch(cursor, true, 1000);
    if (SPI_processed == 0) break;
    validate_batch(r, plan, row_type, snapshot, &v);
  }
  SPI_cursor_close(cursor);
  UnregisterSnapshot(snapshot);
  SPI_freeplan(plan);
  scope.restore();
  const char* name = pstrdup(RelationGetRelationName(rel));
  table_close(rel, AccessShareLock);
  if (v.count > 0)
    throw Error(ERRCODE_EXCLUSION_VIOLATION,
                psprintf("existing rows of \"%s\" violate overlap rule \"%s\"", name, r.name),
                psprintf("%lld violation%s%s: %s%s.", static_cast<long long>(v.count),
                         v.count == 1 ? "" : "s", v.count > 5 ? ", the first 5" : "", v.text.data,
                         v.count > 5 ? "; ..." : ""))
        .on(source, {}, r.name);
}

// ---- add_overlap_rule, step by step ---------------------------------------------------------

// name_array returns the names of an argument of type name[] (palloc'd).
char** name_array(ArrayType* a, int* n, const char* what) {
  if (ARR_NDIM(a) > 1)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                psprintf("%s must be a one-dimensional array", what));
  char** out = name_list(a, n);
  if (out == nullptr)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, psprintf("%s must not contain NULL", what));
  return out;
}

// column returns the attribute number of relid's column name (42703 when there is none).
AttrNumber column(Oid relid, const char* name) {
  const AttrNumber att = get_attnum(relid, name);
  if (att == InvalidAttrNumber || att < 0)
    throw Error(
        ERRCODE_UNDEFINED_COLUMN,
        psprintf("column \"%s\" of relation \"%s\" does not exist", name, get_rel_name(relid)));
  return att;
}

// spi_exec_as_owner runs sql as the extension's owner.
void spi_exec_as_owner(const char* sql) {
  sg::util::OwnerScope owner;
  owner.enter(sg::util::audit_owner());
  sg::util::spi_exec(sql);
  owner.restore();
}

// rule_args reads add_overlap_rule's arguments into a rule (no id and no trigger yet) and checks
// each of them.
Rule rule_args(FunctionCallInfo fcinfo) {
  for (int i = 0; i < 5; i++)
    if (PG_ARGISNULL(i))
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                  "tbl, rule_name, key_columns, period_columns and capacity must not be NULL");
  Rule r{};
  r.tbl = PG_GETARG_OID(0);
  r.name = pstrdup(NameStr(*PG_GETARG_NAME(1)));
  r.keys = name_array(PG_GETARG_ARRAYTYPE_P(2), &r.nkeys, "key_columns");
  r.period = name_array(PG_GETARG_ARRAYTYPE_P(3), &r.nperiod, "period_columns");
  r.capacity = PG_GETARG_INT32(4);
  r.only_when = PG_ARGISNULL(5) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(5));
  r.message = PG_ARGISNULL(6) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(6));
  if (r.name[0] == '\0')
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "rule_name must not be empty");
  if (r.nkeys < 1) throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "key_columns must not be empty");
  if (r.nperiod != 1 && r.nperiod != 2)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                "period_columns names a start and an end column, or one range column");
  if (r.capacity < 1)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                psprintf("capacity must be at least 1, not %d", r.capacity));
  return r;
}

// lock_rule_table checks that the caller owns table relid and locks it against writes and DDL
// until the transaction ends; a table with inheritance children is refused (the rule would not
// check their rows).
void lock_rule_table(Oid relid) {
  const char relkind = sg::util::check_table(relid, true);
  LockRelationOid(relid, ShareRowExclusiveLock);
  if (relkind == RELKIND_RELATION && find_inheritance_children(relid, NoLock) != NIL)
    throw Error(ERRCODE_FEATURE_NOT_SUPPORTED,
                psprintf("table \"%s\" has inheritance children", get_rel_name(relid)),
                "An overlap rule would not check the rows of an inheritance child.",
                "Use a partitioned table (CREATE TABLE ... PARTITION OF), whose partitions the "
                "rules cover.")
        .on(relid);
}

// new_rule_range_type checks the columns a new rule names and returns the range type of its
// two-column period ("" for one range column).
const char* new_rule_range_type(const Rule& r) {
  const Oid relid = r.tbl;
  for (int i = 0; i < r.nkeys; i++) column(relid, r.keys[i]);
  if (r.nperiod == 1) {
    const Oid t = get_atttype(relid, column(relid, r.period[0]));
    if (!type_is_range(getBaseType(t)))
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                  psprintf("period column \"%s\" is not a range", r.period[0]), "",
                  "Name a start and an end column, or one range column.");
    return "";
  }
  const Oid t0 = get_atttype(relid, column(relid, r.period[0]));
  const Oid t1 = get_atttype(relid, column(relid, r.period[1]));
  if (getBaseType(t0) != getBaseType(t1))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                psprintf("period columns \"%s\" and \"%s\" have different types", r.period[0],
                         r.period[1]));
  const char* range_type = range_type_for(t0);
  if (range_type == nullptr)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                psprintf("period columns of type %s are not supported", format_type_be(t0)), "",
                "Use timestamptz, timestamp, date, time, integer, bigint, numeric or "
                "double precision, or one range column.");
  return range_type;
}

// refuse_duplicate refuses a rule whose name the table's rules already use.
void refuse_duplicate(const Rule& r) {
  ListCell* lc;
  foreach (lc, read_rules(r.tbl))
    if (strcmp(static_cast<const Rule*>(lfirst(lc))->name, r.name) == 0)
      throw Error(ERRCODE_DUPLICATE_OBJECT, psprintf("overlap rule \"%s\" already exists on \"%s\"",
                                                     r.name, get_rel_name(r.tbl)));
}

// check_only_when validates the predicate by using it, where the check will use it: as the
// table's owner with search_path pinned. SPI is connected.
void check_only_when(const Rule& r, const char* table) {
  if (!r.only_when[0]) return;
  CheckScope scope;
  scope.enter(rel_owner(r.tbl), true);
  sg::util::spi_exec(psprintf("SELECT FROM %s WHERE (%s) LIMIT 0", table, r.only_when));
  check_predicate(r.only_when);
  scope.restore();
}

// RuleObjects are the names of what a rule installs on its table, cut to an identifier's length.
struct RuleObjects {
  char trigger[NAMEDATALEN];
  bool has_check;  // a CHECK that the period ends after it starts (two period columns)
  char check[NAMEDATALEN];
  char index[NAMEDATALEN];
};

RuleObjects rule_objects(const Rule& r) {
  RuleObjects o;
  strlcpy(o.trigger, psprintf("slotguard_30_overlap_%s", r.name), sizeof o.trigger);
  o.has_check = r.nperiod == 2;
  if (o.has_check)
    strlcpy(o.check, psprintf("%s_%s_period_check", get_rel_name(r.tbl), r.name), sizeof o.check);
  strlcpy(o.index, psprintf("%s_%s_overlap_idx", get_rel_name(r.tbl), r.name), sizeof o.index);
  return o;
}

// period_range_sql renders the rule's period over the table's own columns as a range expression
// (the indexed expression, and the catalog's range_sql).
const char* period_range_sql(const Rule& r, const char* range_type) {
  if (r.nperiod == 1) return quote_identifier(r.period[0]);
  return psprintf("%s(%s, %s, '[)')", range_type, quote_identifier(r.period[0]),
                  quote_identifier(r.period[1]));
}

// add_period_check adds the CHECK of a two-column period: end before start is an error; a NULL
// end means unbounded.
void add_period_check(const Rule& r, const RuleObjects& o, const char* table) {
  if (!o.has_check) return;
  sg::util::spi_exec(
      psprintf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (slotguard.period_is_ordered(%s, %s, %s))",
               table, quote_identifier(o.check), quote_identifier(r.period[0]),
               quote_identifier(r.period[1]), quote_literal_cstr(r.name)));
}

// another_index_fits says whether table relid already has an index that fits as well as the
// rule's new index `index` — the same GiST definition, e.g. one the DBA made for an earlier rule.
// Definitions are compared as PostgreSQL prints them.
bool another_index_fits(Oid relid, const char* index) {
  Oid types[1] = {OIDOID};
  Datum v[1] = {ObjectIdGetDatum(relid)};
  const char* q =
      "SELECT 1 FROM pg_catalog.pg_index i, pg_catalog.pg_index mine "
      " WHERE i.indrelid OPERATOR(pg_catalog.=) $1 AND mine.indrelid OPERATOR(pg_catalog.=) $1 "
      "   AND mine.indexrelid OPERATOR(pg_catalog.=) ("
      "       SELECT c.oid FROM pg_catalog.pg_class c "
      "        WHERE c.relname OPERATOR(pg_catalog.=) %s "
      "          AND c.relnamespace OPERATOR(pg_catalog.=) %u) "
      "   AND i.indexrelid OPERATOR(pg_catalog.<>) mine.indexrelid "
      "   AND i.indpred IS NULL AND i.indisvalid "
      "   AND pg_catalog.substring(pg_catalog.pg_get_indexdef(i.indexrelid), ' USING .*$') "
      "       OPERATOR(pg_catalog.=) "
      "       pg_catalog.substring(pg_catalog.pg_get_indexdef(mine.indexrelid), ' USING .*$') "
      " LIMIT 1";
  SPI_execute_with_args(psprintf(q, quote_literal_cstr(index), get_rel_namespace(relid)), 1, types,
                        v, nullptr, false, 1);
  return SPI_processed > 0;
}

// create_rule_index creates the rule's GiST index over (key columns, period range), or uses one
// the table already has that fits (then it returns false: the rule owns no index).
bool create_rule_index(const Rule& r, const RuleObjects& o, const char* table,
                       const char* range_expr) {
  StringInfoData keys_sql;
  initStringInfo(&keys_sql);
  for (int i = 0; i < r.nkeys; i++)
    appendStringInfo(&keys_sql, "%s%s", i ? ", " : "", quote_identifier(r.keys[i]));
  // btree_gist gives the scalar key columns an opclass. Where the database has none, it is
  // created in schema pg_catalog — a schema no role can own or drop — never in a schema of the
  // caller's search_path (docs/sql-api.md "Overlap rules").
  if (!OidIsValid(get_extension_oid("btree_gist", true)))
    spi_exec_as_owner("CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA pg_catalog");
  sg::util::spi_exec(psprintf("CREATE INDEX %s ON %s USING gist (%s, (%s))",
                              quote_identifier(o.index), table, keys_sql.data, range_expr));
  if (!another_index_fits(r.tbl, o.index)) return true;
  sg::util::spi_exec(
      psprintf("DROP INDEX %s",
               quote_qualified_identifier(get_namespace_name(get_rel_namespace(r.tbl)), o.index)));
  return false;
}

// names_sql renders names as an SQL name[] literal.
char* names_sql(char** names, int n) {
  StringInfoData sql;
  initStringInfo(&sql);
  appendStringInfoString(&sql, "ARRAY[");
  for (int i = 0; i < n; i++)
    appendStringInfo(&sql, "%s%s", i ? ", " : "", quote_literal_cstr(names[i]));
  appendStringInfoString(&sql, "]::pg_catalog.name[]");
  return sql.data;
}

// record_rule writes the rule's row of slotguard.overlap_rule_defs, as the extension's owner, and
// returns its id.
int32 record_rule(const Rule& r, const RuleObjects& o, const char* range_expr, bool own_index) {
  const char* keys_arr = names_sql(r.keys, r.nkeys);
  const char* period_arr = names_sql(r.period, r.nperiod);
  sg::util::OwnerScope owner;
  owner.enter(sg::util::audit_owner());
  sg::util::spi_exec(psprintf(
      "INSERT INTO slotguard.overlap_rule_defs (tbl, rule_name, key_columns, period_columns, "
      "capacity, only_when, message, range_sql, trigger_name, index_name, check_name) "
      "VALUES (%u, %s, %s, %s, %d, %s, %s, %s, %s, %s, %s) RETURNING id",
      r.tbl, quote_literal_cstr(r.name), keys_arr, period_arr, r.capacity,
      r.only_when[0] ? quote_literal_cstr(r.only_when) : "NULL",
      r.message[0] ? quote_literal_cstr(r.message) : "NULL", quote_literal_cstr(range_expr),
      quote_literal_cstr(o.trigger), own_index ? quote_literal_cstr(o.index) : "NULL",
      o.has_check ? quote_literal_cstr(o.check) : "NULL"));
  owner.restore();
  bool isnull;
  if (SPI_processed != 1 || SPI_gettypeid(SPI_tuptable->tupdesc, 1) != INT4OID)
    elog(ERROR, "slotguard: could not record overlap rule \"%s\"", r.name);
  return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

// ---- the DDL event trigger ------------------------------------------------------------------

// refuse_inheritance: rows of an inheritance child would escape the rules of its parent (the
// parent's trigger does not fire for them), so a table with rules takes no inheritance children.
void refuse_inheritance(Oid parent, const char* child) {
  List* rules = rules_covering(parent);
  if (rules == NIL) return;
  throw Error(ERRCODE_FEATURE_NOT_SUPPORTED,
              psprintf("\"%s\" cannot inherit from \"%s\", which has overlap rules", child,
                       get_rel_name(parent)),
              psprintf("Overlap rule \"%s\" would not check the rows of an inheritance child.",
                       static_cast<Rule*>(linitial(rules))->name),
              "Use a partitioned table (CREATE TABLE ... PARTITION OF), whose partitions the rules "
              "cover.")
      .on(parent, {}, static_cast<Rule*>(linitial(rules))->name);
}

// check_create_table: CREATE TABLE ... INHERITS (or CREATE FOREIGN TABLE ... PARTITION OF) a table
// with rules is refused.
void check_create_table(Node* tree) {
  const auto* cs = reinterpret_cast<const CreateStmt*>(tree);
  const bool foreign = IsA(tree, CreateForeignTableStmt);
  ListCell* lc;
  foreach (lc, cs->inhRelations) {
    const Oid parent = RangeVarGetRelid(lfirst_node(RangeVar, lc), NoLock, true);
    if (!OidIsValid(parent)) continue;
    if (cs->partbound == nullptr || foreign) refuse_inheritance(parent, cs->relation->relname);
  }
}

// check_attach_partition validates the rows of a partition attached to a table with rules
// against each rule (a foreign table is refused).
void check_attach_partition(const AlterTableStmt* as, const PartitionCmd* pc) {
  const Oid parent = RangeVarGetRelid(as->relation, NoLock, true);
  const Oid part = RangeVarGetRelid(pc->name, NoLock, true);
  if (!OidIsValid(parent) || !OidIsValid(part)) return;
  if (get_rel_relkind(part) == RELKIND_FOREIGN_TABLE) {
    refuse_inheritance(parent, pc->name->relname);
    return;
  }
  List* rules = rules_covering(parent);
  if (rules == NIL) return;
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "slotguard: SPI_connect failed");
  ListCell* rc;
  foreach (rc, rules) validate_rows(part, *static_cast<const Rule*>(lfirst(rc)));
  SPI_finish();
}

// check_alter_table: ALTER TABLE ... INHERIT a table with rules is refused; ATTACH PARTITION is
// validated.
void check_alter_table(const AlterTableStmt* as) {
  if (as->objtype != OBJECT_TABLE && as->objtype != OBJECT_FOREIGN_TABLE) return;
  ListCell* lc;
  foreach (lc, as->cmds) {
    const auto* cmd = lfirst_node(AlterTableCmd, lc);
    if (cmd->subtype == AT_AddInherit) {
      const Oid parent = RangeVarGetRelid(reinterpret_cast<RangeVar*>(cmd->def), NoLock, true);
      if (OidIsValid(parent)) refuse_inheritance(parent, as->relation->relname);
    } else if (cmd->subtype == AT_AttachPartition) {
      check_attach_partition(as, reinterpret_cast<const PartitionCmd*>(cmd->def));
    }
  }
}

}  // namespace

// slotguard.add_overlap_rule(tbl, rule_name, key_columns, period_columns, capacity, only_when,
// message): installs the rule's CHECK, index, catalog row and trigger, then validates the
// existing rows.
SG_FUNCTION(sg_add_overlap_rule) {
  Rule r = rule_args(fcinfo);
  lock_rule_table(r.tbl);
  const char* range_type = new_rule_range_type(r);
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "slotguard: SPI_connect failed");
  refuse_duplicate(r);
  const char* table = sg::util::qualified_name(r.tbl);
  check_only_when(r, table);
  const RuleObjects o = rule_objects(r);
  const char* range_expr = period_range_sql(r, range_type);
  add_period_check(r, o, table);
  const bool own_index = create_rule_index(r, o, table, range_expr);
  r.trigger_name = o.trigger;
  r.id = record_rule(r, o, range_expr, own_index);
  // The trigger fires on INSERT and on every UPDATE (an UPDATE OF list would miss a period a
  // BEFORE trigger computes); it reads its rule from the catalog and skips updates that leave the
  // rule's columns as they were.
  sg::util::spi_exec(
      psprintf("CREATE TRIGGER %s AFTER INSERT OR UPDATE ON %s FOR EACH ROW "
               "EXECUTE FUNCTION slotguard.overlap_trigger()",
               quote_identifier(o.trigger), table));
  // The existing rows must satisfy the rule: check each, as an INSERT of it would be, with a
  // snapshot taken now that the lock is held.
  validate_rows(r.tbl, r);
  SPI_finish();
  PG_RETURN_VOID();
}

// slotguard.drop_overlap_rule(tbl, rule_name): removes the rule, its trigger, and the index and
// CHECK it created.
SG_FUNCTION(sg_drop_overlap_rule) {
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "tbl and rule_name must not be NULL");
  const Oid relid = PG_GETARG_OID(0);
  const char* name = pstrdup(NameStr(*PG_GETARG_NAME(1)));
  sg::util::check_table(relid, true);
  LockRelationOid(relid, ShareRowExclusiveLock);
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "slotguard: SPI_connect failed");
  sg::util::OwnerScope owner;
  owner.enter(sg::util::audit_owner());
  Oid types[2] = {OIDOID, NAMEOID};
  Datum v[2] = {ObjectIdGetDatum(relid), DirectFunctionCall1(namein, CStringGetDatum(name))};
  SPI_execute_with_args(
      "DELETE FROM slotguard.overlap_rule_defs WHERE tbl OPERATOR(pg_catalog.=) $1 "
      "AND rule_name OPERATOR(pg_catalog.=) $2 RETURNING trigger_name, index_name, check_name, "
      "range_sql, key_columns",
      2, types, v, nullptr, false, 0);
  if (SPI_processed == 0)
    throw Error(ERRCODE_UNDEFINED_OBJECT, psprintf("overlap rule \"%s\" of \"%s\" does not exist",
                                                   name, get_rel_name(relid)));
  char* trigger = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
  char* index = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
  char* check = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
  if (index) {
    // Another rule of the table may be using this index (it fitted): hand it over, keep it.
    bool isnull;
    Datum h[4] = {ObjectIdGetDatum(relid), DirectFunctionCall1(namein, CStringGetDatum(index)),
                  SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull),
                  SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5, &isnull)};
    Oid htypes[4] = {OIDOID, NAMEOID, TEXTOID, NAMEARRAYOID};
    SPI_execute_with_args(
        "UPDATE slotguard.overlap_rule_defs SET index_name = $2 "
        " WHERE id = (SELECT id FROM slotguard.overlap_rule_defs "
        "              WHERE tbl OPERATOR(pg_catalog.=) $1 AND index_name IS NULL "
        "                AND range_sql OPERATOR(pg_catalog.=) $3 "
        "                AND key_columns OPERATOR(pg_catalog.=) $4 LIMIT 1)",
        4, htypes, h, nullptr, false, 0);
    if (SPI_processed > 0) index = nullptr;
  }
  owner.restore();
  const char* table = sg::util::qualified_name(relid);
  sg::util::spi_exec(psprintf("DROP TRIGGER IF EXISTS %s ON %s", quote_identifier(trigger), table));
  if (index)
    sg::util::spi_exec(
        psprintf("DROP INDEX IF EXISTS %s",
                 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), index)));
  if (check)
    sg::util::spi_exec(
        psprintf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s", table, quote_identifier(check)));
  SPI_finish();
  PG_RETURN_VOID();
}

// slotguard._overlap_ddl_check(): event trigger at the end of CREATE TABLE and ALTER TABLE. Rows
// reach a table with overlap rules without passing its trigger in two ways PostgreSQL allows:
//  - ATTACH PARTITION brings a table's rows in: they are validated against every rule of the
//    partitioned table and its ancestors, as add_overlap_rule validates (23P01 undoes the ATTACH);
//  - an inheritance child (CREATE TABLE ... INHERITS, ALTER TABLE ... INHERIT) has rows the
//    parent's trigger never sees: refused (0A000), as is a foreign table as a partition (its rows
//    change where no trigger fires).
SG_FUNCTION(sg_overlap_ddl_check) {
  if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                "slotguard._overlap_ddl_check() called outside an event trigger");
  const auto* ev = reinterpret_cast<EventTriggerData*>(fcinfo->context);
  Node* tree = ev->parsetree;
  if (tree == nullptr) PG_RETURN_VOID();
  if (IsA(tree, CreateStmt) || IsA(tree, CreateForeignTableStmt))
    check_create_table(tree);
  else if (IsA(tree, AlterTableStmt))
    check_alter_table(reinterpret_cast<const AlterTableStmt*>(tree));
  PG_RETURN_VOID();
}

// slotguard.period_is_ordered(start, end, rule): the CHECK an overlap rule installs on a pair of
// period columns. True unless end < start, which is 22023 naming the rule (NULL: unbounded).
SG_FUNCTION(sg_period_is_ordered) {
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1)) PG_RETURN_BOOL(true);
  const Oid type = get_fn_expr_argtype(fcinfo->flinfo, 0);
  TypeCacheEntry* tc = lookup_type_cache(type, TYPECACHE_CMP_PROC_FINFO);
  if (!OidIsValid(tc->cmp_proc_finfo.fn_oid))
    throw Error(ERRCODE_UNDEFINED_FUNCTION,
                psprintf("no ordering for type %s", format_type_be(type)));
  const int32 cmp = DatumGetInt32(FunctionCall2Coll(&tc->cmp_proc_finfo, PG_GET_COLLATION(),
                                                    PG_GETARG_DATUM(1), PG_GETARG_DATUM(0)));
  if (cmp < 0) {
    Oid out;
    bool varlena;
    getTypeOutputInfo(type, &out, &varlena);
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                psprintf("period ends before it starts (%s < %s)",
                         OidOutputFunctionCall(out, PG_GETARG_DATUM(1)),
                         OidOutputFunctionCall(out, PG_GETARG_DATUM(0))),
                PG_ARGISNULL(2) ? ""
                                : psprintf("Overlap rule \"%s\" needs end >= start.",
                                           text_to_cstring(PG_GETARG_TEXT_PP(2))));
  }
  PG_RETURN_BOOL(true);
}
