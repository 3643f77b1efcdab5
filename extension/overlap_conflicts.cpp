// overlap_conflicts: slotguard.find_conflicts(tbl, candidate, ignore_key), run when an application
// asks which rows a row it has not written would conflict with (a form showing free times, an
// edit before it is saved). It runs each rule's check statement (overlap_statement.cpp) for the
// candidate, as the trigger would, and writes nothing.
//
// Written in PostgreSQL's style: palloc'd data, no C++ objects with destructors.
#include "boundary.hpp"
#include "overlap.hpp"
#include "util.hpp"

using namespace sg::overlap;
using sg::Error;

namespace {

// may_select_all: whether user may SELECT every column of relid (table-level or column by column).
bool may_select_all(Oid relid, Oid user) {
  return pg_class_aclcheck(relid, user, ACL_SELECT) == ACLCHECK_OK ||
         pg_attribute_aclcheck_all(relid, user, ACL_SELECT, ACLMASK_ALL) == ACLCHECK_OK;
}

// visible_to_caller: whether the current user's query of table `query_table` returns row
// (table, ctid): row-level security policies applied as for any SELECT of theirs.
bool visible_to_caller(Oid query_table, Oid table, ItemPointer ctid) {
  Oid types[2] = {OIDOID, TIDOID};
  Datum v[2] = {ObjectIdGetDatum(table), PointerGetDatum(ctid)};
  const int rc =
      SPI_execute_with_args(psprintf("SELECT FROM %s t WHERE t.tableoid OPERATOR(pg_catalog.=) $1 "
                                     "AND t.ctid OPERATOR(pg_catalog.=) $2",
                                     sg::util::qualified_name(query_table)),
                            2, types, v, nullptr, true, 1);
  if (rc != SPI_OK_SELECT)
    elog(ERROR, "slotguard: visibility check failed: %s", SPI_result_code_string(rc));
  const bool visible = SPI_processed > 0;
  SPI_freetuptable(SPI_tuptable);
  return visible;
}

// compare_rule_names orders rules by name (find_conflicts' result order).
int compare_rule_names(const ListCell* a, const ListCell* b) {
  return strcmp(static_cast<const Rule*>(lfirst(a))->name,
                static_cast<const Rule*>(lfirst(b))->name);
}

// check_candidate_columns: unknown columns of candidate are an error, as in an INSERT.
void check_candidate_columns(Relation rel, Jsonb* candidate) {
  JsonbIterator* it = JsonbIteratorInit(&candidate->root);
  JsonbValue v;
  JsonbIteratorToken tok;
  int depth = 0;
  while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE) {
    CHECK_FOR_INTERRUPTS();
    if (tok == WJB_BEGIN_OBJECT) depth++;
    if (tok == WJB_END_OBJECT) depth--;
    if (tok == WJB_KEY && depth == 1) {
      char* col = pnstrdup(v.val.string.val, v.val.string.len);
      if (SPI_fnumber(RelationGetDescr(rel), col) <= 0)
        throw Error(ERRCODE_UNDEFINED_COLUMN,
                    psprintf("column \"%s\" of relation \"%s\" does not exist", col,
                             RelationGetRelationName(rel)));
    }
  }
}

// column_default returns the default expression of a column as SQL, or nullptr when it has none
// (or its default takes a sequence value, which a check must not do).
const char* column_default(Relation rel, Form_pg_attribute att) {
  TupleDesc desc = RelationGetDescr(rel);
  const char* def = nullptr;
  if (att->atthasdef && !att->attgenerated && desc->constr) {
    for (int d = 0; d < desc->constr->num_defval; d++)
      if (desc->constr->defval[d].adnum == att->attnum) {
        char* expr = TextDatumGetCString(
            DirectFunctionCall2(pg_get_expr, CStringGetTextDatum(desc->constr->defval[d].adbin),
                                ObjectIdGetDatum(RelationGetRelid(rel))));
        if (strstr(expr, "nextval(") == nullptr) def = expr;
      }
  }
  return def;
}

// candidate_row returns the candidate as a row of rel (a Datum in the caller's context): its
// columns, else the columns' defaults (not sequences), else NULL. SPI is connected and the
// caller's CheckScope entered.
Datum candidate_row(Relation rel, Jsonb* candidate) {
  TupleDesc desc = RelationGetDescr(rel);
  const char* table = sg::util::qualified_name(RelationGetRelid(rel));
  StringInfoData base;
  initStringInfo(&base);
  appendStringInfoString(&base, "SELECT pg_catalog.jsonb_populate_record(ROW(");
  bool first = true;
  for (int i = 0; i < desc->natts; i++) {
    Form_pg_attribute att = TupleDescAttr(desc, i);
    if (att->attisdropped) continue;
    const char* def = column_default(rel, att);
    appendStringInfo(&base, "%s%s::%s", first ? "" : ", ", def ? psprintf("(%s)", def) : "NULL",
                     format_type_with_typemod(att->atttypid, att->atttypmod));
    first = false;
  }
  appendStringInfo(&base, ")::%s, $1)", table);
  Oid jtypes[1] = {JSONBOID};
  Datum jv[1] = {PointerGetDatum(candidate)};
  if (SPI_execute_with_args(base.data, 1, jtypes, jv, nullptr, false, 1) != SPI_OK_SELECT ||
      SPI_processed != 1 || SPI_gettypeid(SPI_tuptable->tupdesc, 1) != rel->rd_rel->reltype)
    elog(ERROR, "slotguard: could not build the candidate row of \"%s\"", table);
  bool isnull;
  return SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull),
                           false, -1);
}

// ignored_row_sql builds the query that finds the row ignore_key names by primary key ($1).
char* ignored_row_sql(Relation rel, Jsonb* ignore_key) {
  const char* table = sg::util::qualified_name(RelationGetRelid(rel));
  TupleDesc desc = RelationGetDescr(rel);
  Bitmapset* pk = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);
  if (pk == nullptr)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                psprintf("table \"%s\" has no primary key for ignore_key", table));
  const bool scalar = JB_ROOT_IS_SCALAR(ignore_key);
  StringInfoData q;
  initStringInfo(&q);
  int member = -1, npk = 0;
  appendStringInfo(
      &q, "SELECT t.ctid, t.tableoid FROM %s t, pg_catalog.jsonb_populate_record(NULL::%s, ", table,
      table);
  StringInfoData where;
  initStringInfo(&where);
  const char* single = nullptr;
  while ((member = bms_next_member(pk, member)) >= 0) {
    Form_pg_attribute att = TupleDescAttr(desc, member + FirstLowInvalidHeapAttributeNumber - 1);
    const char* col = NameStr(att->attname);
    single = col;
    TypeCacheEntry* tc = lookup_type_cache(att->atttypid, TYPECACHE_EQ_OPR);
    if (!OidIsValid(tc->eq_opr))
      throw Error(ERRCODE_UNDEFINED_FUNCTION,
                  psprintf("no equality operator for primary key column \"%s\"", col));
    appendStringInfo(&where, "%st.%s %s k.%s", npk ? " AND " : "", quote_identifier(col),
                     sg::util::operator_sql(tc->eq_opr), quote_identifier(col));
    npk++;
  }
  if (scalar && npk != 1)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                "ignore_key must be a JSON object for a primary key of several columns");
  if (scalar)
    appendStringInfo(&q, "pg_catalog.jsonb_build_object(%s, $1)) k WHERE %s",
                     quote_literal_cstr(single), where.data);
  else
    appendStringInfo(&q, "$1) k WHERE %s", where.data);
  return q.data;
}

// find_ignored_row finds the row being edited (ignore_key, by primary key): true and its ctid and
// table, or false when there is none. SPI is connected and the caller's CheckScope entered.
bool find_ignored_row(Relation rel, Jsonb* ignore_key, ItemPointerData* ignore, Oid* ignore_table) {
  Oid jtypes[1] = {JSONBOID};
  Datum kv[1] = {PointerGetDatum(ignore_key)};
  SPI_execute_with_args(ignored_row_sql(rel, ignore_key), 1, jtypes, kv, nullptr, true, 1);
  if (SPI_processed == 0 || SPI_gettypeid(SPI_tuptable->tupdesc, 1) != TIDOID ||
      SPI_gettypeid(SPI_tuptable->tupdesc, 2) != OIDOID)
    return false;
  bool isnull;
  *ignore = *reinterpret_cast<ItemPointer>(
      DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)));
  *ignore_table =
      DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
  return true;
}

// Ignored is the row find_conflicts leaves out (the row being edited), if any.
struct Ignored {
  bool ignoring;
  ItemPointerData ctid;
  Oid table;
};

// put_conflicts runs rule r's check for the candidate row and adds the conflicting rows to the
// result: for a capacity rule, those covering the worst instant. SPI is connected.
void put_conflicts(ReturnSetInfo* rsinfo, Relation rel, const Rule& r, Datum row,
                   const Ignored& ignored, Oid caller, CheckScope& scope) {
  ItemPointerData ignore = ignored.ctid;
  scope.enter(rel_owner(r.tbl), true);
  SPIPlanPtr plan = prepare_check(rel, r);
  run_check(plan, row, ignored.ignoring ? &ignore : nullptr, ignored.table, nullptr);
  scope.restore();
  SPITupleTable* found = SPI_tuptable;
  const uint64 n = SPI_processed;
  const Sweep s = sweep(r, found, n);
  if (!s.found) return;
  // What the caller may read of the conflicting rows: all of them (SELECT on the rule's table,
  // no row-level security), those its policies show, or none.
  const bool readable = may_select_all(r.tbl, caller);
  const bool rls = readable && check_enable_rls(r.tbl, caller, false) == RLS_ENABLED;
  for (uint64 i = 0; i < n; i++) {
    CHECK_FOR_INTERRUPTS();
    if (!s.covers[i]) continue;  // capacity rules: the rows covering the worst instant
    bool shown = readable;
    if (rls) {
      bool in;
      const Oid t = DatumGetObjectId(SPI_getbinval(found->vals[i], found->tupdesc, kColTable, &in));
      const Datum tid = SPI_getbinval(found->vals[i], found->tupdesc, kColTid, &in);
      shown = visible_to_caller(r.tbl, t, reinterpret_cast<ItemPointer>(DatumGetPointer(tid)));
    }
    bool in;
    Datum values[3] = {DirectFunctionCall1(namein, CStringGetDatum(r.name)),
                       shown ? SPI_getbinval(found->vals[i], found->tupdesc, kColKey, &in) : 0,
                       shown ? SPI_getbinval(found->vals[i], found->tupdesc, kColRow, &in) : 0};
    bool nulls[3] = {false, !shown, !shown};
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
  }
  SPI_freeplan(plan);
}

}  // namespace

// slotguard.find_conflicts(tbl, candidate, ignore_key): the rows that an INSERT of candidate would
// conflict with, per rule, without writing anything. The caller needs SELECT on the table; the
// check itself (the candidate's defaults, the predicate, the search) runs as the table's owner in
// the restricted scope the trigger uses, so none of the table's code runs with the caller's
// rights. A conflicting row the caller may not read (row-level security, no SELECT on the rule's
// table) is reported with its key and row withheld (NULL).
SG_FUNCTION(sg_find_conflicts) {
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "tbl and candidate must not be NULL");
  const Oid relid = PG_GETARG_OID(0);
  Jsonb* candidate = PG_GETARG_JSONB_P(1);
  if (!JB_ROOT_IS_OBJECT(candidate) || JB_ROOT_IS_SCALAR(candidate))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                "candidate must be a JSON object of column values");
  sg::util::check_table(relid, false);
  const Oid caller = GetUserId();
  if (!may_select_all(relid, caller))
    aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, get_rel_name(relid));
  Jsonb* ignore_key = PG_ARGISNULL(2) ? nullptr : PG_GETARG_JSONB_P(2);
  InitMaterializedSRF(fcinfo, 0);
  auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  Relation rel = table_open(relid, AccessShareLock);
  check_candidate_columns(rel, candidate);
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "slotguard: SPI_connect failed");
  const Oid owner = rel_owner(relid);
  CheckScope scope;
  scope.enter(owner, true);
  const Datum row = candidate_row(rel, candidate);
  Ignored ignored{false, {}, InvalidOid};
  if (ignore_key != nullptr)
    ignored.ignoring = find_ignored_row(rel, ignore_key, &ignored.ctid, &ignored.table);
  scope.restore();
  // A row the caller cannot see is not left out (leaving it out would tell that it conflicts).
  if (ignored.ignoring && check_enable_rls(relid, caller, false) == RLS_ENABLED)
    ignored.ignoring = visible_to_caller(relid, ignored.table, &ignored.ctid);

  List* rules = rules_covering(relid);
  list_sort(rules, compare_rule_names);
  ListCell* lc;
  foreach (lc, rules) {
    CHECK_FOR_INTERRUPTS();
    put_conflicts(rsinfo, rel, *static_cast<const Rule*>(lfirst(lc)), row, ignored, caller, scope);
  }
  SPI_finish();
  table_close(rel, AccessShareLock);
  return (Datum)0;
}
