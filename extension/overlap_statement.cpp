// overlap_statement: the SQL statement that checks a row against an overlap rule, the scope it
// runs in, and the count of what it finds. Built when a rule is added or validated, when a
// backend's trigger first checks a rule (then kept, overlap_cache.cpp), and by find_conflicts.
//
// The check statement is built from the rule and the table as it is now (a column renamed,
// dropped or retyped since is a clear error). It runs as the owner of the rule's table in a
// restricted scope (SECURITY_RESTRICTED_OPERATION; with an only_when predicate search_path is
// pinned to pg_catalog, pg_temp): neither the writer's nor a find_conflicts caller's rights or
// search_path matter, and a predicate cannot run with their rights.
//
// Written in PostgreSQL's style: palloc'd data, no C++ objects with destructors.
#include "boundary.hpp"
#include "overlap.hpp"
#include "util.hpp"

namespace sg::overlap {

namespace {

using sg::Error;

// range_sql renders the rule's period over alias as a range expression.
char* range_sql(const Rule& r, const char* range_type, const char* alias) {
  if (r.nperiod == 1) return psprintf("%s.%s", alias, quote_identifier(r.period[0]));
  return psprintf("%s(%s.%s, %s.%s, '[)')", range_type, alias, quote_identifier(r.period[0]), alias,
                  quote_identifier(r.period[1]));
}

int compare_events(const void* a, const void* b, void* arg) {
  const auto* x = static_cast<const PeriodEvent*>(a);
  const auto* y = static_cast<const PeriodEvent*>(b);
  const int c = range_cmp_bounds(static_cast<TypeCacheEntry*>(arg), x->bound, y->bound);
  if (c != 0) return c;
  return y->delta - x->delta;  // at one instant, rows that start cover it with those that end
}

// check_result refuses a result whose columns are not what check_sql selects.
void check_result(const Rule& r, TupleDesc desc) {
  static const Oid kTypes[kNumCols - 1] = {OIDOID, TIDOID, JSONBOID, JSONBOID, TEXTOID};
  bool ok = desc->natts == kNumCols;
  for (int i = 0; ok && i < kNumCols - 1; i++) ok = SPI_gettypeid(desc, i + 1) == kTypes[i];
  if (!ok || !type_is_range(SPI_gettypeid(desc, kColClip)))
    ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                    errmsg("the check of overlap rule \"%s\" returned columns of unexpected types",
                           r.name)));
}

}  // namespace

// ---- the check statement --------------------------------------------------------------------

const char* range_type_for(Oid type) {
  switch (getBaseType(type)) {
    case TIMESTAMPTZOID:
      return "pg_catalog.tstzrange";
    case TIMESTAMPOID:
      return "pg_catalog.tsrange";
    case DATEOID:
      return "pg_catalog.daterange";
    case INT2OID:
    case INT4OID:
      return "pg_catalog.int4range";
    case INT8OID:
      return "pg_catalog.int8range";
    case NUMERICOID:
      return "pg_catalog.numrange";
    case TIMEOID:
      return "slotguard.timerange";
    case FLOAT4OID:
    case FLOAT8OID:
      return "slotguard.float8range";
  }
  return nullptr;
}

// rule_column is the attribute number of a column the rule names, or a clear error when the table
// no longer has it (renamed or dropped since the rule was added).
AttrNumber rule_column(Relation rel, const Rule& r, const char* column, const char* what) {
  const int att = SPI_fnumber(RelationGetDescr(rel), column);
  if (att <= 0)
    throw Error(ERRCODE_UNDEFINED_COLUMN,
                psprintf("%s column \"%s\" of overlap rule \"%s\" does not exist in \"%s\"", what,
                         column, r.name, RelationGetRelationName(rel)),
                "",
                "A column the rule uses was renamed or dropped: drop the rule and add it again.")
        .on(RelationGetRelid(rel), column, r.name);
  return static_cast<AttrNumber>(att);
}

// rule_range_type checks the rule's columns against rel as it is now and returns the range type
// of a two-column period ("" for a range column).
const char* rule_range_type(Relation rel, const Rule& r) {
  TupleDesc desc = RelationGetDescr(rel);
  for (int i = 0; i < r.nkeys; i++) rule_column(rel, r, r.keys[i], "key");
  if (r.nperiod == 2) {
    const Oid t0 = TupleDescAttr(desc, rule_column(rel, r, r.period[0], "period") - 1)->atttypid;
    const Oid t1 = TupleDescAttr(desc, rule_column(rel, r, r.period[1], "period") - 1)->atttypid;
    const char* range = range_type_for(t0);
    if (getBaseType(t0) != getBaseType(t1) || range == nullptr)
      throw Error(ERRCODE_DATATYPE_MISMATCH,
                  psprintf("period columns of overlap rule \"%s\" have types %s and %s", r.name,
                           format_type_be(t0), format_type_be(t1)),
                  "", "A period column's type was changed: drop the rule and add it again.")
          .on(RelationGetRelid(rel), r.period[0], r.name);
    return range;
  }
  const Oid t = TupleDescAttr(desc, rule_column(rel, r, r.period[0], "period") - 1)->atttypid;
  if (!type_is_range(getBaseType(t)))
    throw Error(ERRCODE_DATATYPE_MISMATCH,
                psprintf("period column \"%s\" of overlap rule \"%s\" is not a range (%s)",
                         r.period[0], r.name, format_type_be(t)),
                "", "The period column's type was changed: drop the rule and add it again.")
        .on(RelationGetRelid(rel), r.period[0], r.name);
  return "";
}

// check_predicate refuses an only_when that is not exactly one expression (text that would close
// the parenthesis it is put in and go on with SQL of its own).
void check_predicate(const char* pred) {
  List* raw = raw_parser(psprintf("SELECT (%s\n)", pred), RAW_PARSE_DEFAULT);
  bool one = list_length(raw) == 1 && IsA(linitial_node(RawStmt, raw)->stmt, SelectStmt);
  if (one) {
    const auto* s = reinterpret_cast<SelectStmt*>(linitial_node(RawStmt, raw)->stmt);
    one = s->op == SETOP_NONE && s->fromClause == NIL && s->whereClause == nullptr &&
          list_length(s->targetList) == 1 && s->distinctClause == NIL && s->intoClause == nullptr &&
          s->groupClause == NIL && s->havingClause == nullptr && s->windowClause == NIL &&
          s->valuesLists == NIL && s->sortClause == NIL && s->limitOffset == nullptr &&
          s->limitCount == nullptr && s->lockingClause == NIL && s->withClause == nullptr &&
          linitial_node(ResTarget, s->targetList)->name == nullptr;
  }
  if (!one)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "only_when must be a single SQL expression", "",
                "Write a boolean expression over the table's columns, e.g. status <> "
                "'cancelled'.");
}

// key_json_sql renders the primary key of alias as a jsonb object (or its ctid, without one).
char* key_json_sql(Relation rel, const char* alias) {
  Bitmapset* pk = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);
  if (pk == nullptr)
    return psprintf("pg_catalog.jsonb_build_object('ctid', %s.ctid::pg_catalog.text)", alias);
  StringInfoData sql;
  initStringInfo(&sql);
  appendStringInfoString(&sql, "pg_catalog.jsonb_build_object(");
  int member = -1;
  bool first = true;
  while ((member = bms_next_member(pk, member)) >= 0) {
    const char* col = NameStr(
        TupleDescAttr(RelationGetDescr(rel), member + FirstLowInvalidHeapAttributeNumber - 1)
            ->attname);
    appendStringInfo(&sql, "%s%s, %s.%s", first ? "" : ", ", quote_literal_cstr(col), alias,
                     quote_identifier(col));
    first = false;
  }
  appendStringInfoChar(&sql, ')');
  return sql.data;
}

// check_sql builds the statement that lists the rows of the rule's table that overlap a candidate
// row of rel. $1 is the candidate (rel's row type), $2/$3 the ctid and table of a row to leave
// out (NULL for none). Each result row: (tableoid, ctid, key as jsonb, row as jsonb, period as
// text, the part of its period it shares with the candidate), ordered by table and ctid. How many
// rows cover one instant is counted from the last column (sweep below).
char* check_sql(Relation rel, const Rule& r) {
  const char* range_type = rule_range_type(rel, r);
  if (r.only_when[0]) check_predicate(r.only_when);
  // The candidate has the row type of rel; the search covers the rule's table (for a partition,
  // the partitioned table the rule was added to: a row conflicts with rows of every partition).
  const char* cand_type = sg::util::qualified_name(RelationGetRelid(rel));
  const char* table = sg::util::qualified_name(r.tbl);
  const char* pred = r.only_when[0] ? psprintf("(%s)", r.only_when) : "true";
  StringInfoData match;
  initStringInfo(&match);
  TupleDesc desc = RelationGetDescr(rel);
  for (int i = 0; i < r.nkeys; i++) {
    const AttrNumber att = rule_column(rel, r, r.keys[i], "key");
    TypeCacheEntry* tc =
        lookup_type_cache(TupleDescAttr(desc, att - 1)->atttypid, TYPECACHE_EQ_OPR);
    if (!OidIsValid(tc->eq_opr))
      throw Error(ERRCODE_UNDEFINED_FUNCTION,
                  psprintf("no equality operator for key column \"%s\"", r.keys[i]));
    appendStringInfo(&match, " AND t.%s %s sg_n.%s", quote_identifier(r.keys[i]),
                     sg::util::operator_sql(tc->eq_opr), quote_identifier(r.keys[i]));
  }
  const char* rt = range_sql(r, range_type, "t");
  // The candidate's period, made only once the candidate's order is checked (CASE fixes the order
  // of evaluation, also when the planner folds the candidate's values into constants).
  const char* rn = "sg_n.slotguard_candidate_period";
  const char* rn0 =
      r.nperiod == 2
          ? psprintf("CASE WHEN slotguard.period_is_ordered(sg_n0.%s, sg_n0.%s, %s) THEN %s END",
                     quote_identifier(r.period[0]), quote_identifier(r.period[1]),
                     quote_literal_cstr(r.name), range_sql(r, range_type, "sg_n0"))
          : range_sql(r, range_type, "sg_n0");
  // A candidate whose period ends before it starts is refused as the rule's CHECK refuses it.
  const char* ordered =
      r.nperiod == 2
          ? psprintf("slotguard.period_is_ordered(%s, %s, %s) AND ", quote_identifier(r.period[0]),
                     quote_identifier(r.period[1]), quote_literal_cstr(r.name))
          : "";
  return psprintf(
      "SELECT x.sg_table, x.sg_tid, x.sg_key, x.sg_row, x.sg_range::pg_catalog.text, x.sg_clip"
      "  FROM (SELECT sg_n0.*, %s AS slotguard_candidate_period"
      "          FROM (SELECT ($1::%s).*) sg_n0 WHERE %s%s) sg_n,"
      " LATERAL (SELECT t.tableoid AS sg_table, t.ctid AS sg_tid, %s AS sg_key,"
      "                 pg_catalog.to_jsonb(t.*) AS sg_row, %s AS sg_range,"
      "                 %s OPERATOR(pg_catalog.*) %s AS sg_clip"
      "            FROM %s t WHERE %s%s AND %s OPERATOR(pg_catalog.&&) %s"
      "             AND ($2::pg_catalog.tid IS NULL"
      "                  OR t.ctid OPERATOR(pg_catalog.<>) $2::pg_catalog.tid"
      "                  OR t.tableoid OPERATOR(pg_catalog.<>) $3::pg_catalog.oid)) x"
      " ORDER BY 1, 2",
      rn0, cand_type, ordered, pred, key_json_sql(rel, "t"), rt, rt, rn, table, pred, match.data,
      rt, rn);
}

SPIPlanPtr prepare_check(Relation rel, const Rule& r) {
  Oid types[3] = {rel->rd_rel->reltype, TIDOID, OIDOID};
  SPIPlanPtr plan = SPI_prepare(check_sql(rel, r), 3, types);
  if (plan == nullptr)
    elog(ERROR, "slotguard: could not prepare the check of overlap rule \"%s\": %s", r.name,
         SPI_result_code_string(SPI_result));
  return plan;
}

void run_check(SPIPlanPtr plan, Datum candidate, ItemPointer self, Oid self_table,
               Snapshot snapshot) {
  Datum values[3] = {candidate, PointerGetDatum(self), ObjectIdGetDatum(self_table)};
  const char nulls[4] = {' ', self ? ' ' : 'n', self ? ' ' : 'n', '\0'};
  // read_only = false, as PostgreSQL's own RI checks do: the command counter is bumped, so the
  // check sees every row the current statement wrote (a multi-row INSERT or UPDATE is checked
  // against itself) and no longer sees the row's old version.
  const int rc = snapshot ? SPI_execute_snapshot(plan, values, nulls, snapshot, InvalidSnapshot,
                                                 false, false, 0)
                          : SPI_execute_plan(plan, values, nulls, false, 0);
  if (rc != SPI_OK_SELECT)
    elog(ERROR, "slotguard: overlap check failed: %s", SPI_result_code_string(rc));
}

void CheckScope::enter(Oid owner, bool pin_path) {
  GetUserIdAndSecContext(&saved_user, &saved_context);
  SetUserIdAndSecContext(owner, saved_context | SECURITY_LOCAL_USERID_CHANGE |
                                    SECURITY_RESTRICTED_OPERATION | SECURITY_NOFORCE_RLS);
  guc_level = -1;
  if (pin_path) {
    guc_level = NewGUCNestLevel();
    set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
                      GUC_ACTION_SAVE, true, 0, false);
    set_config_option("standard_conforming_strings", "on", PGC_USERSET, PGC_S_SESSION,
                      GUC_ACTION_SAVE, true, 0, false);
  }
}

void CheckScope::restore() const {
  if (guc_level >= 0) AtEOXact_GUC(true, guc_level);
  SetUserIdAndSecContext(saved_user, saved_context);
}

// ---- counting: how many rows cover the worst instant ----------------------------------------

// deepest sorts the m events (the bounds of the periods to count) as PostgreSQL orders range
// bounds and counts them in one pass: how many periods cover the instant covered by the most of
// them (0 when m is 0), *at receiving that instant's bound.
int32 deepest(TypeCacheEntry* tc, PeriodEvent* events, size_t m, const RangeBound** at) {
  qsort_arg(events, m, sizeof(PeriodEvent), compare_events, tc);
  int32 depth = 0, best = 0;
  *at = nullptr;
  for (size_t j = 0; j < m; j++) {
    depth += events[j].delta;
    if (depth > best) {
      best = depth;
      *at = events[j].bound;
    }
  }
  return best;
}

// sweep finds the instant covered by the most of the n rows in t (each clipped to the candidate's
// period, so the candidate covers every instant they cover). The bounds of the clipped periods are
// sorted as PostgreSQL orders range bounds — an exclusive lower bound comes just after its value,
// an exclusive upper bound just before it, infinite bounds first and last — and counted in one
// pass: O(n log n), right for every kind of bound.
Sweep sweep(const Rule& r, SPITupleTable* t, uint64 n) {
  check_result(r, t->tupdesc);
  Sweep s{false, 1, -1, static_cast<bool*>(palloc0(sizeof(bool) * (n + 1)))};
  if (n == 0) return s;
  if (r.capacity == 1) {  // any overlapping row is a conflict
    for (uint64 i = 0; i < n; i++) s.covers[i] = true;
    s.found = true;
    s.covered = 2;
    s.first = 0;
    return s;
  }
  TypeCacheEntry* tc = lookup_type_cache(SPI_gettypeid(t->tupdesc, kColClip), TYPECACHE_RANGE_INFO);
  if (tc->rngelemtype == nullptr)
    ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                    errmsg("the check of overlap rule \"%s\" returned no range", r.name)));
  auto* lower = static_cast<RangeBound*>(palloc(sizeof(RangeBound) * n));
  auto* upper = static_cast<RangeBound*>(palloc(sizeof(RangeBound) * n));
  auto* used = static_cast<bool*>(palloc0(sizeof(bool) * n));
  auto* events = static_cast<PeriodEvent*>(palloc(sizeof(PeriodEvent) * 2 * n));
  size_t m = 0;
  for (uint64 i = 0; i < n; i++) {
    CHECK_FOR_INTERRUPTS();
    bool isnull;
    const Datum clip = SPI_getbinval(t->vals[i], t->tupdesc, kColClip, &isnull);
    if (isnull) continue;
    bool empty;
    range_deserialize(tc, DatumGetRangeTypeP(clip), &lower[i], &upper[i], &empty);
    if (empty) continue;
    used[i] = true;
    events[m++] = PeriodEvent{&lower[i], 1};
    events[m++] = PeriodEvent{&upper[i], -1};
  }
  const RangeBound* at = nullptr;
  const int32 best = deepest(tc, events, m, &at);
  s.covered = 1 + best;
  s.found = s.covered > r.capacity;
  for (uint64 i = 0; at != nullptr && i < n; i++) {
    CHECK_FOR_INTERRUPTS();
    s.covers[i] = used[i] && range_cmp_bounds(tc, &lower[i], at) <= 0 &&
                  range_cmp_bounds(tc, at, &upper[i]) <= 0;
    if (s.covers[i] && s.first < 0) s.first = static_cast<int>(i);
  }
  return s;
}

}  // namespace sg::overlap
