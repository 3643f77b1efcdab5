// overlap: add_overlap_rule / drop_overlap_rule / find_conflicts and the trigger that keeps rows
// of one key from overlapping in time beyond a capacity (README "Overlap rules").
//
// How a check is race-free (README "How overlap rules stay race-free"): the trigger fires AFTER
// the row is written, takes slotguard's transaction-scoped lock on (rule, key) — so writers of one
// key queue behind each other while writers of other keys never meet — and then looks for
// overlapping rows with a fresh snapshot, which sees every row a writer of that key committed
// before we got the lock. A writer still in progress holds the lock, so it cannot be missed: it
// checks after us and sees our row. A conflicting row that an unfinished transaction is deleting
// or moving is waited for, as an exclusion constraint waits, and the check runs again. Under
// REPEATABLE READ / SERIALIZABLE a conflicting row that is newer than the transaction's snapshot
// gives 40001, as PostgreSQL's own exclusion constraints do; one the snapshot sees gives 23P01.
//
// Where a rule comes from: only slotguard.overlap_rule_defs, which only the extension's owner can
// write (add_overlap_rule writes it after validating every part). The trigger finds its rule
// there by its own name and table and ignores its arguments; a trigger on
// slotguard.overlap_trigger() without a rule is refused. The check statement is built from the
// rule and the table as it is now (a column renamed, dropped or retyped since is a clear error),
// once per backend and rule, and kept (SPI_keepplan). It runs as the owner of the rule's table in
// a restricted scope (SECURITY_RESTRICTED_OPERATION; with an only_when predicate search_path is
// pinned to pg_catalog, pg_temp): neither the writer's nor a find_conflicts caller's rights or
// search_path matter, and a predicate cannot run with their rights.
//
// Written in PostgreSQL's style: palloc'd data, no C++ objects with destructors.
#include "boundary.hpp"
#include "stats.hpp"
#include "util.hpp"

extern "C" {
#include "access/genam.h"
#include "access/relscan.h"
#include "access/skey.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/partition.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_inherits.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "nodes/parsenodes.h"
#include "nodes/primnodes.h"
#include "parser/parser.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/rangetypes.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
}

namespace {

using sg::Error;

// ---- rules, from slotguard.overlap_rule_defs ------------------------------------------------

// Rule is one row of slotguard.overlap_rule_defs.
struct Rule {
  int32 id;
  Oid tbl;  // the table the rule was added to (for a partition: its partitioned ancestor)
  const char* name;
  int32 capacity;
  const char* only_when;  // "" for none
  const char* message;    // "" for the default
  int nkeys;
  char** keys;
  int nperiod;
  char** period;
  const char* trigger_name;
};

Oid defs_relid() {
  const Oid relid = get_relname_relid("overlap_rule_defs", get_namespace_oid("slotguard", false));
  if (!OidIsValid(relid))
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                    errmsg("relation \"slotguard.overlap_rule_defs\" does not exist")));
  return relid;
}

char** name_items(Datum array, int* n) {
  ArrayType* a = DatumGetArrayTypeP(array);
  if (ARR_ELEMTYPE(a) != NAMEOID || ARR_NDIM(a) > 1)
    ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
                    errmsg("slotguard.overlap_rule_defs holds a column list that is not name[]")));
  Datum* items;
  bool* nulls;
  deconstruct_array(a, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR, &items, &nulls, n);
  char** out = static_cast<char**>(palloc(sizeof(char*) * (*n + 1)));
  for (int i = 0; i < *n; i++) {
    if (nulls[i])
      ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
                      errmsg("slotguard.overlap_rule_defs holds a NULL column name")));
    out[i] = pstrdup(NameStr(*DatumGetName(items[i])));
  }
  return out;
}

// read_rules returns the rules added to table tbl (Rule*, palloc'd in the current context), read
// with a fresh snapshot. It reads the catalog directly: callers need no right on it.
List* read_rules(Oid tbl) {
  static const struct {
    const char* name;
    Oid type;
  } kColumns[] = {{"id", INT4OID},
                  {"tbl", REGCLASSOID},
                  {"rule_name", NAMEOID},
                  {"key_columns", NAMEARRAYOID},
                  {"period_columns", NAMEARRAYOID},
                  {"capacity", INT4OID},
                  {"only_when", TEXTOID},
                  {"message", TEXTOID},
                  {"trigger_name", NAMEOID}};
  constexpr int kN = sizeof kColumns / sizeof kColumns[0];
  Relation defs = table_open(defs_relid(), AccessShareLock);
  TupleDesc desc = RelationGetDescr(defs);
  AttrNumber att[kN];
  for (int c = 0; c < kN; c++) {
    att[c] = InvalidAttrNumber;
    for (int i = 0; i < desc->natts; i++) {
      const Form_pg_attribute a = TupleDescAttr(desc, i);
      if (!a->attisdropped && strcmp(NameStr(a->attname), kColumns[c].name) == 0) {
        if (a->atttypid == kColumns[c].type) att[c] = a->attnum;
        break;
      }
    }
    if (att[c] == InvalidAttrNumber)
      ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
                      errmsg("column \"%s\" of slotguard.overlap_rule_defs is missing or has "
                             "another type",
                             kColumns[c].name)));
  }
  ScanKeyData key;
  ScanKeyInit(&key, att[1], BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(tbl));
  Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
  SysScanDesc scan = systable_beginscan(defs, InvalidOid, false, snapshot, 1, &key);
  List* rules = NIL;
  HeapTuple tuple;
  while ((tuple = systable_getnext(scan)) != nullptr) {
    CHECK_FOR_INTERRUPTS();
    Datum v[kN];
    bool isnull[kN];
    for (int c = 0; c < kN; c++) v[c] = heap_getattr(tuple, att[c], desc, &isnull[c]);
    if (isnull[0] || isnull[2] || isnull[3] || isnull[4] || isnull[5] || isnull[8])
      ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
                      errmsg("slotguard.overlap_rule_defs holds an incomplete rule")));
    auto* r = static_cast<Rule*>(palloc0(sizeof(Rule)));
    r->id = DatumGetInt32(v[0]);
    r->tbl = tbl;
    r->name = pstrdup(NameStr(*DatumGetName(v[2])));
    r->keys = name_items(v[3], &r->nkeys);
    r->period = name_items(v[4], &r->nperiod);
    r->capacity = DatumGetInt32(v[5]);
    r->only_when = isnull[6] ? "" : TextDatumGetCString(v[6]);
    r->message = isnull[7] ? "" : TextDatumGetCString(v[7]);
    r->trigger_name = pstrdup(NameStr(*DatumGetName(v[8])));
    if (r->nkeys < 1 || (r->nperiod != 1 && r->nperiod != 2) || r->capacity < 1)
      ereport(ERROR,
              (errcode(ERRCODE_DATA_CORRUPTED),
               errmsg("overlap rule \"%s\" in slotguard.overlap_rule_defs is malformed", r->name)));
    rules = lappend(rules, r);
  }
  systable_endscan(scan);
  UnregisterSnapshot(snapshot);
  table_close(defs, AccessShareLock);
  return rules;
}

// rule_tables: relid, then its partition ancestors (whose rules cover relid's rows too).
List* rule_tables(Oid relid) {
  List* tables = list_make1_oid(relid);
  if (get_rel_relispartition(relid)) tables = list_concat(tables, get_partition_ancestors(relid));
  return tables;
}

Rule* copy_rule(const Rule& r) {
  auto* c = static_cast<Rule*>(palloc(sizeof(Rule)));
  *c = r;
  c->name = pstrdup(r.name);
  c->only_when = pstrdup(r.only_when);
  c->message = pstrdup(r.message);
  c->trigger_name = pstrdup(r.trigger_name);
  c->keys = static_cast<char**>(palloc(sizeof(char*) * r.nkeys));
  for (int i = 0; i < r.nkeys; i++) c->keys[i] = pstrdup(r.keys[i]);
  c->period = static_cast<char**>(palloc(sizeof(char*) * r.nperiod));
  for (int i = 0; i < r.nperiod; i++) c->period[i] = pstrdup(r.period[i]);
  return c;
}

Oid rel_owner(Oid relid) {
  HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
  if (!HeapTupleIsValid(tuple))
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                    errmsg("relation with OID %u does not exist", relid)));
  const Oid owner = reinterpret_cast<Form_pg_class>(GETSTRUCT(tuple))->relowner;
  ReleaseSysCache(tuple);
  return owner;
}

// ---- the check statement --------------------------------------------------------------------

// range_type_for picks the range type of a period of type `type`.
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

// range_sql renders the rule's period over alias as a range expression.
char* range_sql(const Rule& r, const char* range_type, const char* alias) {
  if (r.nperiod == 1) return psprintf("%s.%s", alias, quote_identifier(r.period[0]));
  return psprintf("%s(%s.%s, %s.%s, '[)')", range_type, alias, quote_identifier(r.period[0]), alias,
                  quote_identifier(r.period[1]));
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

// Columns of the check's result.
enum : int { kColTable = 1, kColTid, kColKey, kColRow, kColPeriod, kColClip, kNumCols = kColClip };

// ---- counting: how many rows cover the worst instant ----------------------------------------

// Sweep is what the check's rows mean for the candidate.
struct Sweep {
  bool found;     // the rule is violated
  int32 covered;  // rows covering the worst instant, the candidate included
  int first;      // the first row (in the result's order) that covers it
  bool* covers;   // per result row: whether it covers the worst instant
};

struct Event {
  const RangeBound* bound;
  int delta;  // +1 a row starts covering, -1 it stops
};

int compare_events(const void* a, const void* b, void* arg) {
  const auto* x = static_cast<const Event*>(a);
  const auto* y = static_cast<const Event*>(b);
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
  auto* events = static_cast<Event*>(palloc(sizeof(Event) * 2 * n));
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
    events[m++] = Event{&lower[i], 1};
    events[m++] = Event{&upper[i], -1};
  }
  qsort_arg(events, m, sizeof(Event), compare_events, tc);
  int32 depth = 0, best = 0;
  const RangeBound* at = nullptr;
  for (size_t j = 0; j < m; j++) {
    depth += events[j].delta;
    if (depth > best) {
      best = depth;
      at = events[j].bound;
    }
  }
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

// run_check runs the rule's statement for candidate (a row-type Datum), leaving out `self`.
// With a snapshot, it is used instead of the current one. Rows land in SPI_tuptable.
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

// deleter_in_progress returns a transaction still in progress that deletes (or moves by UPDATE)
// one of the check's rows, or InvalidTransactionId: an exclusion constraint waits for it before
// deciding, and so does the rule.
TransactionId deleter_in_progress(SPITupleTable* t, uint64 n) {
  for (uint64 i = 0; i < n; i++) {
    CHECK_FOR_INTERRUPTS();
    bool isnull;
    const Oid table = DatumGetObjectId(SPI_getbinval(t->vals[i], t->tupdesc, kColTable, &isnull));
    const Datum tid = SPI_getbinval(t->vals[i], t->tupdesc, kColTid, &isnull);
    if (isnull) continue;
    ItemPointerData ctid = *reinterpret_cast<ItemPointer>(DatumGetPointer(tid));
    Relation rel = table_open(table, AccessShareLock);
    SnapshotData dirty;
    InitDirtySnapshot(dirty);
    TupleTableSlot* slot = table_slot_create(rel, nullptr);
    TransactionId xid = InvalidTransactionId;
    if (table_tuple_fetch_row_version(rel, &ctid, &dirty, slot) && TransactionIdIsValid(dirty.xmax))
      xid = dirty.xmax;
    ExecDropSingleTupleTableSlot(slot);
    table_close(rel, AccessShareLock);
    if (TransactionIdIsValid(xid)) return xid;
  }
  return InvalidTransactionId;
}

// CheckScope: the check runs as the owner of the rule's table, restricted (no SET ROLE, no
// transaction control, ...), and not subject to the owner's own FORCE ROW LEVEL SECURITY (rows a
// policy hides must still count, as for PostgreSQL's foreign-key checks). With pin_path,
// search_path is pinned to pg_catalog, pg_temp and standard_conforming_strings on, so a
// predicate means what it meant when the rule was added.
struct CheckScope {
  Oid saved_user;
  int saved_context;
  int guc_level;
  void enter(Oid owner, bool pin_path) {
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
  void restore() const {
    if (guc_level >= 0) AtEOXact_GUC(true, guc_level);
    SetUserIdAndSecContext(saved_user, saved_context);
  }
};

// may_show says whether user may see the values of a conflicting row of the rule's table in an
// error, as PostgreSQL's BuildIndexValueDescription decides for a unique or exclusion violation:
// only when no row-level security applies to user and user may SELECT the table, or each column
// shown (the primary key, the rule's key and period columns).
bool may_show(const Rule& r, Oid user) {
  if (check_enable_rls(r.tbl, user, true) == RLS_ENABLED) return false;
  if (pg_class_aclcheck(r.tbl, user, ACL_SELECT) == ACLCHECK_OK) return true;
  Relation table = table_open(r.tbl, AccessShareLock);
  Bitmapset* pk = RelationGetIndexAttrBitmap(table, INDEX_ATTR_BITMAP_PRIMARY_KEY);
  table_close(table, AccessShareLock);
  if (pk == nullptr) return false;  // the row is named by its ctid: table-level SELECT only
  int member = -1;
  while ((member = bms_next_member(pk, member)) >= 0)
    if (pg_attribute_aclcheck(r.tbl,
                              static_cast<AttrNumber>(member + FirstLowInvalidHeapAttributeNumber),
                              user, ACL_SELECT) != ACLCHECK_OK)
      return false;
  for (int i = 0; i < r.nkeys + r.nperiod; i++) {
    const char* column = i < r.nkeys ? r.keys[i] : r.period[i - r.nkeys];
    const AttrNumber att = get_attnum(r.tbl, column);
    if (att == InvalidAttrNumber ||
        pg_attribute_aclcheck(r.tbl, att, user, ACL_SELECT) != ACLCHECK_OK)
      return false;
  }
  return true;
}

// ---- per-backend cache of rules by trigger --------------------------------------------------

// What a backend knows of each rule, by trigger: the rule read from the catalog, the prepared SQL
// check and the index the probe uses (below). Any invalidation of the table's relcache entry (ALTER
// TABLE, CREATE or DROP TRIGGER or INDEX, ALTER OWNER, ...) makes the entry be read again; what it
// held is freed at the end of the transaction (a caller up the stack may still be using it).
struct RuleEntry {
  Oid tgoid;
  Oid relid;
  bool valid;
  MemoryContext context;  // holds rule
  Rule* rule;
  SPIPlanPtr plan;   // nullptr until the SQL check first runs
  bool index_known;  // whether `index` has been chosen since the last invalidation
  Oid index;         // InvalidOid: no index the probe can use
};
HTAB* rule_cache = nullptr;
List* retired_plans = NIL;     // in TopMemoryContext
List* retired_contexts = NIL;  // in TopMemoryContext

// An entry is read again when its table changes, and when the rule's own table changes (a
// partition's trigger runs the rule of an ancestor): the check names that table, and a plan
// prepared under its old name would find, after a rename, whatever table took that name.
void forget_rules(Datum, Oid relid) noexcept {
  HASH_SEQ_STATUS it;
  hash_seq_init(&it, rule_cache);
  while (auto* e = static_cast<RuleEntry*>(hash_seq_search(&it)))
    if (relid == InvalidOid || e->relid == relid || (e->rule != nullptr && e->rule->tbl == relid)) {
      e->valid = false;
      e->index_known = false;
    }
}

// A schema renamed (ALTER SCHEMA ... RENAME sends no relcache invalidation for its tables): every
// entry is read again, with the names of now.
void forget_rules_of_schemas(Datum, int, uint32) noexcept {
  forget_rules(0, InvalidOid);
}

void free_retired(XactEvent event, void*) {
  if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
      event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT)
    return;
  ListCell* lc;
  foreach (lc, retired_plans) SPI_freeplan(static_cast<SPIPlanPtr>(lfirst(lc)));
  foreach (lc, retired_contexts) MemoryContextDelete(static_cast<MemoryContext>(lfirst(lc)));
  list_free(retired_plans);
  list_free(retired_contexts);
  retired_plans = NIL;
  retired_contexts = NIL;
}

// rule_of_trigger reads the rule whose trigger tg is: a rule of rel itself, or (a trigger
// PostgreSQL cloned onto a partition) of one of its partitioned ancestors. A trigger attached by
// hand has none and is refused, whatever its arguments.
Rule* rule_of_trigger(Relation rel, const Trigger* tg) {
  List* tables = rule_tables(RelationGetRelid(rel));
  ListCell* lc;
  foreach (lc, tables) {
    List* rules = read_rules(lfirst_oid(lc));
    ListCell* rc;
    foreach (rc, rules) {
      auto* r = static_cast<Rule*>(lfirst(rc));
      if (strcmp(r->trigger_name, tg->tgname) == 0) return r;
    }
  }
  throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
              psprintf("trigger \"%s\" on \"%s\" is not an overlap rule", tg->tgname,
                       RelationGetRelationName(rel)),
              "slotguard.overlap_rule_defs has no rule of this table with this trigger.",
              "Overlap rules are added with slotguard.add_overlap_rule(); "
              "slotguard.overlap_trigger() cannot be attached by hand.")
      .on(RelationGetRelid(rel));
}

RuleEntry* trigger_entry(Relation rel, const Trigger* tg) {
  if (rule_cache == nullptr) {
    HASHCTL info;
    info.keysize = sizeof(Oid);
    info.entrysize = sizeof(RuleEntry);
    info.hcxt = TopMemoryContext;
    rule_cache =
        hash_create("slotguard overlap rules", 64, &info, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
    CacheRegisterRelcacheCallback(forget_rules, 0);
    CacheRegisterSyscacheCallback(NAMESPACEOID, forget_rules_of_schemas, 0);
    RegisterXactCallback(free_retired, nullptr);
  }
  bool found;
  auto* e = static_cast<RuleEntry*>(hash_search(rule_cache, &tg->tgoid, HASH_ENTER, &found));
  if (!found) {
    e->valid = false;
    e->context = nullptr;
    e->rule = nullptr;
    e->plan = nullptr;
  }
  if (e->valid && e->relid == RelationGetRelid(rel)) return e;
  // Retire what the entry held (freed at the end of the transaction) and read the rule again.
  MemoryContext saved = MemoryContextSwitchTo(TopMemoryContext);
  if (e->plan) retired_plans = lappend(retired_plans, e->plan);
  if (e->context) retired_contexts = lappend(retired_contexts, e->context);
  MemoryContextSwitchTo(saved);
  e->plan = nullptr;
  e->context = nullptr;
  e->rule = nullptr;
  e->valid = false;
  Rule* r = rule_of_trigger(rel, tg);
  MemoryContext context =
      AllocSetContextCreate(CacheMemoryContext, "slotguard overlap rule", ALLOCSET_SMALL_SIZES);
  saved = MemoryContextSwitchTo(context);
  Rule* copy = copy_rule(*r);
  MemoryContextSwitchTo(saved);
  e->context = context;
  e->rule = copy;
  e->relid = RelationGetRelid(rel);
  e->index_known = false;
  e->index = InvalidOid;
  e->valid = true;
  return e;
}

// rule_plan returns the entry's prepared check (preparing it in the caller's CheckScope).
SPIPlanPtr rule_plan(RuleEntry* e, Relation rel) {
  if (e->plan != nullptr) return e->plan;
  Oid types[3] = {rel->rd_rel->reltype, TIDOID, OIDOID};
  SPIPlanPtr plan = SPI_prepare(check_sql(rel, *e->rule), 3, types);
  if (plan == nullptr)
    elog(ERROR, "slotguard: could not prepare the check of overlap rule \"%s\": %s", e->rule->name,
         SPI_result_code_string(SPI_result));
  SPI_keepplan(plan);
  e->plan = plan;
  return plan;
}

// may_read_column: whether writer may read column name of table: no row-level security applies
// to writer there, and writer may SELECT the table or the column.
bool may_read_column(Oid table, const char* name, Oid writer) {
  if (check_enable_rls(table, writer, true) == RLS_ENABLED) return false;
  if (pg_class_aclcheck(table, writer, ACL_SELECT) == ACLCHECK_OK) return true;
  const AttrNumber att = get_attnum(table, name);
  return att > 0 && pg_attribute_aclcheck(table, att, writer, ACL_SELECT) == ACLCHECK_OK;
}

// expand_message fills {column} placeholders with the candidate's values: only those of columns
// writer may read, in the table written or in the rule's table (a partition's ancestor), as
// PostgreSQL shows a failing row; a placeholder of another column stays as written (the value may
// come from a default, a generated column or a BEFORE trigger the writer cannot read).
char* expand_message(const char* message, Relation rel, const Rule& r, HeapTuple tuple,
                     Oid writer) {
  TupleDesc desc = RelationGetDescr(rel);
  StringInfoData out;
  initStringInfo(&out);
  for (const char* p = message; *p;) {
    CHECK_FOR_INTERRUPTS();
    const char* close = *p == '{' ? strchr(p + 1, '}') : nullptr;
    if (close) {
      char* name = pnstrdup(p + 1, close - p - 1);
      const int att = SPI_fnumber(desc, name);
      if (att > 0 && (may_read_column(RelationGetRelid(rel), name, writer) ||
                      (r.tbl != RelationGetRelid(rel) && may_read_column(r.tbl, name, writer)))) {
        const char* value = SPI_getvalue(tuple, desc, att);
        appendStringInfoString(&out, value ? value : "NULL");
        p = close + 1;
        continue;
      }
    }
    appendStringInfoChar(&out, *p++);
  }
  return out.data;
}

// key_is_null: a row with a NULL key column never conflicts (as with UNIQUE and EXCLUDE).
bool key_is_null(Relation rel, const Rule& r, HeapTuple tuple) {
  for (int i = 0; i < r.nkeys; i++) {
    bool isnull;
    heap_getattr(tuple, rule_column(rel, r, r.keys[i], "key"), RelationGetDescr(rel), &isnull);
    if (isnull) return true;
  }
  return false;
}

// rule_columns_changed: whether an UPDATE changed a key or period column (compared as stored, so
// a change a BEFORE trigger made counts).
bool rule_columns_changed(Relation rel, const Rule& r, HeapTuple old_tuple, HeapTuple new_tuple) {
  TupleDesc desc = RelationGetDescr(rel);
  for (int i = 0; i < r.nkeys + r.nperiod; i++) {
    const char* column = i < r.nkeys ? r.keys[i] : r.period[i - r.nkeys];
    const int att = SPI_fnumber(desc, column);
    if (att <= 0) return true;  // the check reports it
    const Form_pg_attribute a = TupleDescAttr(desc, att - 1);
    bool null_old, null_new;
    const Datum v_old = heap_getattr(old_tuple, att, desc, &null_old);
    const Datum v_new = heap_getattr(new_tuple, att, desc, &null_new);
    if (null_old != null_new) return true;
    if (!null_old && !datumIsEqual(v_old, v_new, a->attbyval, a->attlen)) return true;
  }
  return false;
}

// lock_key takes slotguard's transaction-scoped lock of (rule, key of tuple).
void lock_key(Relation rel, const Rule& r, HeapTuple tuple) {
  // Equal keys must take the same lock however they are written (1.0 and 1.00, a date under
  // another DateStyle): hash the values with the type's own hash function, as a hash index would.
  TupleDesc desc = RelationGetDescr(rel);
  uint64 h = hash_bytes_uint32_extended(static_cast<uint32>(r.id), 0x5347);
  for (int i = 0; i < r.nkeys; i++) {
    const AttrNumber att = rule_column(rel, r, r.keys[i], "key");
    bool isnull;
    const Datum value = heap_getattr(tuple, att, desc, &isnull);
    const Oid type = TupleDescAttr(desc, att - 1)->atttypid;
    TypeCacheEntry* tc = lookup_type_cache(type, TYPECACHE_HASH_EXTENDED_PROC_FINFO);
    uint64 vh;
    if (OidIsValid(tc->hash_extended_proc_finfo.fn_oid)) {
      vh = DatumGetUInt64(FunctionCall2Coll(&tc->hash_extended_proc_finfo,
                                            TupleDescAttr(desc, att - 1)->attcollation, value,
                                            UInt64GetDatum(0)));
    } else {
      const char* text = SPI_getvalue(tuple, desc, att);  // no hash: its text (one spelling)
      vh = hash_bytes_extended(reinterpret_cast<const unsigned char*>(text),
                               static_cast<int>(strlen(text)), 0);
    }
    h = hash_combine64(h, vh);
  }
  sg::util::lock_xact(sg::util::LockClass::kOverlapKey, h);
}

[[noreturn]] void raise_overlap(Relation rel, const Rule& r, const Sweep& s, SPITupleTable* t,
                                HeapTuple tuple, bool show, Oid writer) {
  sg::stats::count(sg::stats::Scope::kRule, r.id, sg::stats::kRejections);
  const char* table = sg::util::qualified_name(RelationGetRelid(rel));
  const char* message =
      r.message[0]
          ? expand_message(r.message, rel, r, tuple, writer)
          : psprintf("conflicting row violates overlap rule \"%s\" on \"%s\"", r.name, table);
  const int row = s.first >= 0 ? s.first : 0;
  const char* key = show ? SPI_getvalue(t->vals[row], t->tupdesc, kColKey) : nullptr;
  const char* period = show ? SPI_getvalue(t->vals[row], t->tupdesc, kColPeriod) : nullptr;
  const char* detail;
  if (r.capacity == 1)
    detail = show ? psprintf("Rule \"%s\": the row overlaps %s during %s.", r.name, key, period)
                  : psprintf("Rule \"%s\": the row overlaps an existing row.", r.name);
  else
    detail = show ? psprintf(
                        "Rule \"%s\" allows %d at once; %d rows would overlap, among them %s "
                        "during %s.",
                        r.name, r.capacity, s.covered, key, period)
                  : psprintf("Rule \"%s\" allows %d at once; %d rows would overlap.", r.name,
                             r.capacity, s.covered);
  throw Error(ERRCODE_EXCLUSION_VIOLATION, message, detail).on(RelationGetRelid(rel), {}, r.name);
}

// ---- the index probe: the common case of a capacity-1 rule, without SPI ---------------------
//
// A rule of capacity 1 without only_when on a plain table is checked the way PostgreSQL checks an
// exclusion constraint: the GiST index over (key columns, period range) is scanned directly for a
// row that has the candidate's keys and overlaps its period, with the same fresh snapshot the SQL
// check uses. Finding none is the answer (the common case); finding one, or anything this probe
// is not sure about, hands over to the SQL check, which finds the conflicting row again and
// reports it (and tells 23P01 from 40001 under REPEATABLE READ / SERIALIZABLE, and waits for a
// transaction deleting it).

Oid type_namespace(Oid type) {
  HeapTuple tuple = SearchSysCache1(TYPEOID, ObjectIdGetDatum(type));
  if (!HeapTupleIsValid(tuple)) return InvalidOid;
  const Oid nsp = reinterpret_cast<Form_pg_type>(GETSTRUCT(tuple))->typnamespace;
  ReleaseSysCache(tuple);
  return nsp;
}

// index_fits says whether index is a GiST index over exactly (rule keys..., rule period range).
bool index_fits(Relation rel, Relation index, const Rule& r, const char* range_type) {
  Form_pg_index form = index->rd_index;
  if (index->rd_rel->relam != GIST_AM_OID || !form->indisvalid || !form->indisready ||
      !form->indislive || form->indnkeyatts != r.nkeys + 1 || form->indnatts != r.nkeys + 1 ||
      RelationGetIndexPredicate(index) != NIL)
    return false;
  TupleDesc desc = RelationGetDescr(rel);
  for (int i = 0; i < r.nkeys; i++) {
    const int att = SPI_fnumber(desc, r.keys[i]);
    if (att <= 0 || form->indkey.values[i] != att) return false;
    const Form_pg_attribute a = TupleDescAttr(desc, att - 1);
    // The index must compare keys as the rule does: with the column's collation; and not for
    // float keys (btree_gist's = says NaN <> NaN, the type's = says they are equal).
    if (index->rd_indcollation[i] != a->attcollation) return false;
    const Oid base = getBaseType(a->atttypid);
    if (base == FLOAT4OID || base == FLOAT8OID) return false;
  }
  const AttrNumber last = form->indkey.values[r.nkeys];
  if (r.nperiod == 1) return last == SPI_fnumber(desc, r.period[0]);
  if (last != 0) return false;
  List* exprs = RelationGetIndexExpressions(index);
  if (list_length(exprs) != 1 || !IsA(linitial(exprs), FuncExpr)) return false;
  const auto* f = static_cast<const FuncExpr*>(linitial(exprs));
  if (list_length(f->args) != 3 || !IsA(linitial(f->args), Var) || !IsA(lsecond(f->args), Var) ||
      !IsA(lthird(f->args), Const))
    return false;
  const auto* lo = static_cast<const Var*>(linitial(f->args));
  const auto* hi = static_cast<const Var*>(lsecond(f->args));
  const auto* bounds = static_cast<const Const*>(lthird(f->args));
  if (lo->varattno != SPI_fnumber(desc, r.period[0]) ||
      hi->varattno != SPI_fnumber(desc, r.period[1]) || bounds->constisnull ||
      bounds->consttype != TEXTOID || strcmp(TextDatumGetCString(bounds->constvalue), "[)") != 0)
    return false;
  // The constructor of the rule's range type (named schema-qualified): a function of the type's
  // name, in the type's schema, returning that type.
  const Oid range = DatumGetObjectId(DirectFunctionCall1(regtypein, CStringGetDatum(range_type)));
  const char* type_name = strrchr(range_type, '.');
  type_name = type_name ? type_name + 1 : range_type;
  const char* func_name = get_func_name(f->funcid);
  return f->funcresulttype == range && func_name != nullptr && strcmp(func_name, type_name) == 0 &&
         get_func_namespace(f->funcid) == type_namespace(range);
}

// rule_index finds (and remembers per trigger, until the table changes) the index the probe can
// use.
Oid rule_index(Relation rel, RuleEntry* e) {
  if (e->index_known) return e->index;
  const Rule& r = *e->rule;
  const char* range_type = rule_range_type(rel, r);
  Oid chosen = InvalidOid;
  List* indexes = RelationGetIndexList(rel);
  ListCell* lc;
  foreach (lc, indexes) {
    Relation index = index_open(lfirst_oid(lc), AccessShareLock);
    const bool fits = index_fits(rel, index, r, range_type);
    index_close(index, AccessShareLock);
    if (fits) {
      chosen = lfirst_oid(lc);
      break;
    }
  }
  e->index = chosen;
  e->index_known = true;
  return chosen;
}

// probe_finds_none: true when the rule's index shows no other row of the candidate's keys that
// overlaps its period; false when it shows one, or when the probe cannot tell.
bool probe_finds_none(Relation rel, RuleEntry* e, HeapTuple tuple) {
  const Rule& r = *e->rule;
  if (r.capacity != 1 || r.only_when[0] != '\0' || r.tbl != RelationGetRelid(rel) ||
      rel->rd_rel->relkind != RELKIND_RELATION || rel->rd_rel->relispartition ||
      rel->rd_rel->relhassubclass)
    return false;
  const Oid index_oid = rule_index(rel, e);
  if (!OidIsValid(index_oid)) return false;
  Relation index = index_open(index_oid, AccessShareLock);
  const int nkeys = r.nkeys + 1;
  // The index's own values for the candidate: its key columns and its period range expression.
  IndexInfo* info = BuildIndexInfo(index);
  EState* estate = CreateExecutorState();
  TupleTableSlot* candidate = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsHeapTuple);
  ExecStoreHeapTuple(tuple, candidate, false);
  GetPerTupleExprContext(estate)->ecxt_scantuple = candidate;
  Datum values[INDEX_MAX_KEYS];
  bool isnull[INDEX_MAX_KEYS];
  FormIndexDatum(info, candidate, estate, values, isnull);
  bool none = true;
  bool usable = true;
  ScanKeyData keys[INDEX_MAX_KEYS];
  TupleDesc desc = RelationGetDescr(rel);
  for (int i = 0; i < nkeys && usable; i++) {
    if (isnull[i]) {  // a NULL key or period never conflicts (as in the SQL check)
      usable = false;
      break;
    }
    Oid op = OID_RANGE_OVERLAP_OP;
    if (i < r.nkeys) {
      const int att = SPI_fnumber(desc, r.keys[i]);
      op = lookup_type_cache(TupleDescAttr(desc, att - 1)->atttypid, TYPECACHE_EQ_OPR)->eq_opr;
    }
    const int strategy = OidIsValid(op) ? get_op_opfamily_strategy(op, index->rd_opfamily[i]) : 0;
    if (strategy == 0) {
      usable = false;
      none = false;
      break;
    }
    ScanKeyEntryInitialize(&keys[i], 0, static_cast<AttrNumber>(i + 1),
                           static_cast<StrategyNumber>(strategy), InvalidOid,
                           index->rd_indcollation[i], get_opcode(op), values[i]);
  }
  if (usable) {
    // Rows the same statement wrote before this one (a multi-row UPDATE or INSERT) count too:
    // make them visible, as the SQL check's SPI call does.
    CommandCounterIncrement();
    Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
    IndexScanDesc scan = index_beginscan(rel, index, snapshot, nkeys, 0);
    index_rescan(scan, keys, nkeys, nullptr, 0);
    TupleTableSlot* other = table_slot_create(rel, nullptr);
    while (index_getnext_slot(scan, ForwardScanDirection, other)) {
      if (!scan->xs_recheck && ItemPointerEquals(&other->tts_tid, &tuple->t_self)) continue;
      none = false;  // a conflict, or a lossy match to look at closer
      break;
    }
    index_endscan(scan);
    ExecDropSingleTupleTableSlot(other);
    UnregisterSnapshot(snapshot);
  }
  ExecDropSingleTupleTableSlot(candidate);
  FreeExecutorState(estate);
  index_close(index, AccessShareLock);
  return none;
}

}  // namespace

// slotguard.overlap_trigger(): AFTER INSERT OR UPDATE FOR EACH ROW of a table with an overlap
// rule. Its arguments (if any) are ignored: the rule is read from the catalog.
SG_FUNCTION(sg_overlap_trigger) {
  if (!CALLED_AS_TRIGGER(fcinfo))
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                "slotguard.overlap_trigger() called outside a trigger");
  auto* td = reinterpret_cast<TriggerData*>(fcinfo->context);
  if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
      !(TRIGGER_FIRED_BY_INSERT(td->tg_event) || TRIGGER_FIRED_BY_UPDATE(td->tg_event)))
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                "slotguard.overlap_trigger() must fire AFTER INSERT OR UPDATE ... FOR EACH ROW");
  Relation rel = td->tg_relation;
  RuleEntry* e = trigger_entry(rel, td->tg_trigger);
  const Rule& r = *e->rule;  // (retired entries live until the transaction ends)
  const bool update = TRIGGER_FIRED_BY_UPDATE(td->tg_event);
  HeapTuple tuple = update ? td->tg_newtuple : td->tg_trigtuple;
  // An UPDATE that leaves the key and the period as they were cannot add a conflict (unless the
  // predicate's columns changed: with only_when every UPDATE is checked).
  if (update && r.only_when[0] == '\0' && !rule_columns_changed(rel, r, td->tg_trigtuple, tuple))
    return PointerGetDatum(nullptr);
  if (key_is_null(rel, r, tuple)) return PointerGetDatum(nullptr);
  sg::stats::count(sg::stats::Scope::kRule, r.id, sg::stats::kChecks);
  lock_key(rel, r, tuple);
  if (probe_finds_none(rel, e, tuple)) return PointerGetDatum(nullptr);

  const Oid writer = GetUserId();
  CheckScope scope;
  scope.enter(rel_owner(r.tbl), r.only_when[0] != '\0');  // (looked up now: ALTER OWNER)
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "slotguard: SPI_connect failed");
  const Datum candidate = heap_copy_tuple_as_datum(tuple, RelationGetDescr(rel));
  for (;;) {
    CHECK_FOR_INTERRUPTS();
    SPIPlanPtr plan = rule_plan(e, rel);
    run_check(plan, candidate, &tuple->t_self, RelationGetRelid(rel), GetLatestSnapshot());
    SPITupleTable* rows = SPI_tuptable;
    Sweep s = sweep(r, rows, SPI_processed);
    if (!s.found) break;
    // A conflicting row that an unfinished transaction deletes or moves away: wait for it to end
    // (as an exclusion constraint does), then look again.
    const TransactionId deleter = deleter_in_progress(rows, SPI_processed);
    if (TransactionIdIsValid(deleter)) {
      SPI_freetuptable(rows);
      XactLockTableWait(deleter, nullptr, nullptr, XLTW_None);
      continue;
    }
    const bool show = may_show(r, writer);
    if (IsolationUsesXactSnapshot()) {
      // The conflict may be with a row our snapshot cannot see: then it is a serialization
      // failure.
      run_check(plan, candidate, &tuple->t_self, RelationGetRelid(rel), GetTransactionSnapshot());
      const Sweep visible = sweep(r, SPI_tuptable, SPI_processed);
      if (!visible.found) {
        sg::stats::count(sg::stats::Scope::kRule, r.id, sg::stats::kRejections);
        const int row = s.first >= 0 ? s.first : 0;
        ereport(ERROR,
                (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
                 errmsg("could not serialize access due to concurrent insert or update"),
                 show ? errdetail("Overlap rule \"%s\": a conflicting row was committed after this "
                                  "transaction's snapshot: %s during %s.",
                                  r.name, SPI_getvalue(rows->vals[row], rows->tupdesc, kColKey),
                                  SPI_getvalue(rows->vals[row], rows->tupdesc, kColPeriod))
                      : errdetail("Overlap rule \"%s\": a conflicting row was committed after "
                                  "this transaction's snapshot.",
                                  r.name),
                 errhint("The transaction might succeed if retried.")));
      }
      rows = SPI_tuptable;
      s = visible;
    }
    raise_overlap(rel, r, s, rows, tuple, show, writer);
  }
  SPI_finish();
  scope.restore();
  return PointerGetDatum(nullptr);
}

namespace {

// ---- add / drop / validate ------------------------------------------------------------------

char** name_array(ArrayType* a, int* n, const char* what) {
  if (ARR_NDIM(a) > 1)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                psprintf("%s must be a one-dimensional array", what));
  Datum* items;
  bool* nulls;
  deconstruct_array(a, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR, &items, &nulls, n);
  char** out = static_cast<char**>(palloc(sizeof(char*) * (*n + 1)));
  for (int i = 0; i < *n; i++) {
    if (nulls[i])
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE, psprintf("%s must not contain NULL", what));
    out[i] = pstrdup(NameStr(*DatumGetName(items[i])));
  }
  return out;
}

AttrNumber column(Oid relid, const char* name) {
  const AttrNumber att = get_attnum(relid, name);
  if (att == InvalidAttrNumber || att < 0)
    throw Error(
        ERRCODE_UNDEFINED_COLUMN,
        psprintf("column \"%s\" of relation \"%s\" does not exist", name, get_rel_name(relid)));
  return att;
}

void spi_exec_as_owner(const char* sql) {
  sg::util::OwnerScope owner;
  owner.enter(sg::util::audit_owner());
  sg::util::spi_exec(sql);
  owner.restore();
}

// validate_rows checks every row of table source (the rule's table, or a partition being
// attached to it) against rule r, as an INSERT of it would be checked, with a snapshot taken now —
// after the caller's lock — so rows committed while it waited are checked too (as ALTER TABLE
// validates a constraint). Raises 23P01 listing the first violations. SPI is connected.
void validate_rows(Oid source, const Rule& r) {
  Relation rel = table_open(source, AccessShareLock);
  CheckScope scope;
  scope.enter(rel_owner(r.tbl), true);
  Oid types[3] = {rel->rd_rel->reltype, TIDOID, OIDOID};
  SPIPlanPtr plan = SPI_prepare(check_sql(rel, r), 3, types);
  if (plan == nullptr)
    elog(ERROR, "slotguard: could not prepare the check of overlap rule \"%s\": %s", r.name,
         SPI_result_code_string(SPI_result));
  const Oid row_type = rel->rd_rel->reltype;
  const char* select = psprintf("SELECT t.ctid, t, %s, t.tableoid FROM %s t",
                                key_json_sql(rel, "t"), sg::util::qualified_name(source));
  Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
  PushActiveSnapshot(snapshot);
  Portal cursor = SPI_cursor_open_with_args(nullptr, select, 0, nullptr, nullptr, nullptr, true, 0);
  PopActiveSnapshot();
  StringInfoData violations;
  initStringInfo(&violations);
  int64 nviolations = 0;
  for (;;) {
    SPI_cursor_fetch(cursor, true, 1000);
    if (SPI_processed == 0) break;
    SPITupleTable* rows = SPI_tuptable;
    const uint64 n = SPI_processed;
    if (rows->tupdesc->natts != 4 || SPI_gettypeid(rows->tupdesc, 1) != TIDOID ||
        SPI_gettypeid(rows->tupdesc, 2) != row_type ||
        SPI_gettypeid(rows->tupdesc, 3) != JSONBOID || SPI_gettypeid(rows->tupdesc, 4) != OIDOID)
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
        nviolations++;
        if (nviolations <= 5) {
          const int at = s.first >= 0 ? s.first : 0;
          appendStringInfo(&violations, "%s%s overlaps %s during %s", violations.len ? "; " : "",
                           SPI_getvalue(rows->vals[i], rows->tupdesc, 3),
                           SPI_getvalue(found->vals[at], found->tupdesc, kColKey),
                           SPI_getvalue(found->vals[at], found->tupdesc, kColPeriod));
        }
      }
      SPI_freetuptable(found);
    }
    SPI_freetuptable(rows);
  }
  SPI_cursor_close(cursor);
  UnregisterSnapshot(snapshot);
  SPI_freeplan(plan);
  scope.restore();
  const char* name = pstrdup(RelationGetRelationName(rel));
  table_close(rel, AccessShareLock);
  if (nviolations > 0)
    throw Error(ERRCODE_EXCLUSION_VIOLATION,
                psprintf("existing rows of \"%s\" violate overlap rule \"%s\"", name, r.name),
                psprintf("%lld violation%s%s: %s%s.", static_cast<long long>(nviolations),
                         nviolations == 1 ? "" : "s", nviolations > 5 ? ", the first 5" : "",
                         violations.data, nviolations > 5 ? "; ..." : ""))
        .on(source, {}, r.name);
}

int32 rule_id(Oid relid, const char* name, bool* found) {
  List* rules = read_rules(relid);
  ListCell* lc;
  foreach (lc, rules) {
    const auto* r = static_cast<const Rule*>(lfirst(lc));
    if (strcmp(r->name, name) == 0) {
      *found = true;
      return r->id;
    }
  }
  *found = false;
  return 0;
}

// refuse_inheritance: rows of an inheritance child would escape the rules of its parent (the
// parent's trigger does not fire for them), so a table with rules takes no inheritance children.
void refuse_inheritance(Oid parent, const char* child) {
  List* rules = NIL;
  ListCell* lc;
  foreach (lc, rule_tables(parent)) rules = list_concat(rules, read_rules(lfirst_oid(lc)));
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

}  // namespace

// slotguard.add_overlap_rule(tbl, rule_name, key_columns, period_columns, capacity, only_when,
// message): installs the rule's CHECK, index, catalog row and trigger, then validates the
// existing rows.
SG_FUNCTION(sg_add_overlap_rule) {
  for (int i = 0; i < 5; i++)
    if (PG_ARGISNULL(i))
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                  "tbl, rule_name, key_columns, period_columns and capacity must not be NULL");
  const Oid relid = PG_GETARG_OID(0);
  const char* name = pstrdup(NameStr(*PG_GETARG_NAME(1)));
  int nkeys, nperiod;
  char** keys = name_array(PG_GETARG_ARRAYTYPE_P(2), &nkeys, "key_columns");
  char** period = name_array(PG_GETARG_ARRAYTYPE_P(3), &nperiod, "period_columns");
  const int32 capacity = PG_GETARG_INT32(4);
  const char* only_when = PG_ARGISNULL(5) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(5));
  const char* message = PG_ARGISNULL(6) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(6));
  if (name[0] == '\0') throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "rule_name must not be empty");
  if (nkeys < 1) throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "key_columns must not be empty");
  if (nperiod != 1 && nperiod != 2)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                "period_columns names a start and an end column, or one range column");
  if (capacity < 1)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                psprintf("capacity must be at least 1, not %d", capacity));
  const char relkind = sg::util::check_table(relid, true);
  LockRelationOid(relid, ShareRowExclusiveLock);
  if (relkind == RELKIND_RELATION && find_inheritance_children(relid, NoLock) != NIL)
    throw Error(ERRCODE_FEATURE_NOT_SUPPORTED,
                psprintf("table \"%s\" has inheritance children", get_rel_name(relid)),
                "An overlap rule would not check the rows of an inheritance child.",
                "Use a partitioned table (CREATE TABLE ... PARTITION OF), whose partitions the "
                "rules cover.")
        .on(relid);

  for (int i = 0; i < nkeys; i++) column(relid, keys[i]);
  const char* range_type = "";
  if (nperiod == 2) {
    const Oid t0 = get_atttype(relid, column(relid, period[0]));
    const Oid t1 = get_atttype(relid, column(relid, period[1]));
    if (getBaseType(t0) != getBaseType(t1))
      throw Error(
          ERRCODE_INVALID_PARAMETER_VALUE,
          psprintf("period columns \"%s\" and \"%s\" have different types", period[0], period[1]));
    range_type = range_type_for(t0);
    if (range_type == nullptr)
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                  psprintf("period columns of type %s are not supported", format_type_be(t0)), "",
                  "Use timestamptz, timestamp, date, time, integer, bigint, numeric or "
                  "double precision, or one range column.");
  } else {
    const Oid t = get_atttype(relid, column(relid, period[0]));
    if (!type_is_range(getBaseType(t)))
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                  psprintf("period column \"%s\" is not a range", period[0]), "",
                  "Name a start and an end column, or one range column.");
  }
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "slotguard: SPI_connect failed");
  bool exists;
  rule_id(relid, name, &exists);
  if (exists)
    throw Error(ERRCODE_DUPLICATE_OBJECT, psprintf("overlap rule \"%s\" already exists on \"%s\"",
                                                   name, get_rel_name(relid)));

  const char* table = sg::util::qualified_name(relid);
  // Validate the predicate by using it, where the check will use it: as the table's owner with
  // search_path pinned.
  if (only_when[0]) {
    CheckScope scope;
    scope.enter(rel_owner(relid), true);
    sg::util::spi_exec(psprintf("SELECT FROM %s WHERE (%s) LIMIT 0", table, only_when));
    check_predicate(only_when);
    scope.restore();
  }

  const char* trigger = psprintf("slotguard_30_overlap_%s", name);
  char trigger_name[NAMEDATALEN];
  strlcpy(trigger_name, trigger, sizeof trigger_name);
  const char* check_name =
      nperiod == 2 ? psprintf("%s_%s_period_check", get_rel_name(relid), name) : nullptr;
  char check_buf[NAMEDATALEN];
  if (check_name) strlcpy(check_buf, check_name, sizeof check_buf);
  const char* index_name = psprintf("%s_%s_overlap_idx", get_rel_name(relid), name);
  char index_buf[NAMEDATALEN];
  strlcpy(index_buf, index_name, sizeof index_buf);

  StringInfoData keys_sql;
  initStringInfo(&keys_sql);
  for (int i = 0; i < nkeys; i++)
    appendStringInfo(&keys_sql, "%s%s", i ? ", " : "", quote_identifier(keys[i]));
  const char* range_expr = nperiod == 1
                               ? quote_identifier(period[0])
                               : psprintf("%s(%s, %s, '[)')", range_type,
                                          quote_identifier(period[0]), quote_identifier(period[1]));

  // End before start is an error; a NULL end means unbounded.
  if (check_name)
    sg::util::spi_exec(
        psprintf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (slotguard.period_is_ordered(%s, %s, %s))",
                 table, quote_identifier(check_buf), quote_identifier(period[0]),
                 quote_identifier(period[1]), quote_literal_cstr(name)));
  // GiST over (key columns, period range): btree_gist gives the scalar key columns an opclass.
  // Where the database has none, it is created in schema pg_catalog — a schema no role can own
  // or drop — never in a schema of the caller's search_path (README "Overlap rules").
  if (!OidIsValid(get_extension_oid("btree_gist", true)))
    spi_exec_as_owner("CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA pg_catalog");
  sg::util::spi_exec(psprintf("CREATE INDEX %s ON %s USING gist (%s, (%s))",
                              quote_identifier(index_buf), table, keys_sql.data, range_expr));
  // If the table already has an index that fits — the same GiST definition, e.g. one the DBA made
  // for an earlier rule — use it and drop ours. Definitions are compared as PostgreSQL prints them.
  bool own_index = true;
  {
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
    SPI_execute_with_args(psprintf(q, quote_literal_cstr(index_buf), get_rel_namespace(relid)), 1,
                          types, v, nullptr, false, 1);
    if (SPI_processed > 0) {
      sg::util::spi_exec(psprintf(
          "DROP INDEX %s",
          quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), index_buf)));
      own_index = false;
    }
  }

  StringInfoData keys_arr, period_arr;
  initStringInfo(&keys_arr);
  initStringInfo(&period_arr);
  appendStringInfoString(&keys_arr, "ARRAY[");
  for (int i = 0; i < nkeys; i++)
    appendStringInfo(&keys_arr, "%s%s", i ? ", " : "", quote_literal_cstr(keys[i]));
  appendStringInfoString(&keys_arr, "]::pg_catalog.name[]");
  appendStringInfoString(&period_arr, "ARRAY[");
  for (int i = 0; i < nperiod; i++)
    appendStringInfo(&period_arr, "%s%s", i ? ", " : "", quote_literal_cstr(period[i]));
  appendStringInfoString(&period_arr, "]::pg_catalog.name[]");
  sg::util::OwnerScope owner;
  owner.enter(sg::util::audit_owner());
  sg::util::spi_exec(psprintf(
      "INSERT INTO slotguard.overlap_rule_defs (tbl, rule_name, key_columns, period_columns, "
      "capacity, only_when, message, range_sql, trigger_name, index_name, check_name) "
      "VALUES (%u, %s, %s, %s, %d, %s, %s, %s, %s, %s, %s) RETURNING id",
      relid, quote_literal_cstr(name), keys_arr.data, period_arr.data, capacity,
      only_when[0] ? quote_literal_cstr(only_when) : "NULL",
      message[0] ? quote_literal_cstr(message) : "NULL", quote_literal_cstr(range_expr),
      quote_literal_cstr(trigger_name), own_index ? quote_literal_cstr(index_buf) : "NULL",
      check_name ? quote_literal_cstr(check_buf) : "NULL"));
  owner.restore();
  Rule r{0, relid, name, capacity, only_when, message, nkeys, keys, nperiod, period, trigger_name};
  {
    bool isnull;
    if (SPI_processed != 1 || SPI_gettypeid(SPI_tuptable->tupdesc, 1) != INT4OID)
      elog(ERROR, "slotguard: could not record overlap rule \"%s\"", name);
    r.id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
  }

  // The trigger fires on INSERT and on every UPDATE (an UPDATE OF list would miss a period a
  // BEFORE trigger computes); it reads its rule from the catalog and skips updates that leave the
  // rule's columns as they were.
  sg::util::spi_exec(
      psprintf("CREATE TRIGGER %s AFTER INSERT OR UPDATE ON %s FOR EACH ROW "
               "EXECUTE FUNCTION slotguard.overlap_trigger()",
               quote_identifier(trigger_name), table));

  // The existing rows must satisfy the rule: check each, as an INSERT of it would be, with a
  // snapshot taken now that the lock is held.
  validate_rows(relid, r);
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

int compare_rule_names(const ListCell* a, const ListCell* b) {
  return strcmp(static_cast<const Rule*>(lfirst(a))->name,
                static_cast<const Rule*>(lfirst(b))->name);
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
  TupleDesc desc = RelationGetDescr(rel);
  const char* table = sg::util::qualified_name(relid);

  // Unknown columns are an error, as in an INSERT.
  {
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
        if (SPI_fnumber(desc, col) <= 0)
          throw Error(ERRCODE_UNDEFINED_COLUMN,
                      psprintf("column \"%s\" of relation \"%s\" does not exist", col,
                               RelationGetRelationName(rel)));
      }
    }
  }
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "slotguard: SPI_connect failed");
  const Oid owner = rel_owner(relid);
  CheckScope scope;
  scope.enter(owner, true);
  // The candidate row: its columns, else the columns' defaults (not sequences), else NULL.
  StringInfoData base;
  initStringInfo(&base);
  appendStringInfoString(&base, "SELECT pg_catalog.jsonb_populate_record(ROW(");
  bool first = true;
  for (int i = 0; i < desc->natts; i++) {
    Form_pg_attribute att = TupleDescAttr(desc, i);
    if (att->attisdropped) continue;
    const char* def = nullptr;
    if (att->atthasdef && !att->attgenerated && desc->constr) {
      for (int d = 0; d < desc->constr->num_defval; d++)
        if (desc->constr->defval[d].adnum == att->attnum) {
          char* expr = TextDatumGetCString(
              DirectFunctionCall2(pg_get_expr, CStringGetTextDatum(desc->constr->defval[d].adbin),
                                  ObjectIdGetDatum(relid)));
          if (strstr(expr, "nextval(") == nullptr) def = expr;
        }
    }
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
  const Datum row = SPI_datumTransfer(
      SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull), false, -1);

  // ignore_key: the row being edited, found by primary key.
  ItemPointerData ignore;
  Oid ignore_table = InvalidOid;
  bool ignoring = false;
  if (ignore_key != nullptr) {
    Bitmapset* pk = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);
    if (pk == nullptr)
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                  psprintf("table \"%s\" has no primary key for ignore_key", table));
    const bool scalar = JB_ROOT_IS_SCALAR(ignore_key);
    StringInfoData q;
    initStringInfo(&q);
    int member = -1, npk = 0;
    appendStringInfo(
        &q, "SELECT t.ctid, t.tableoid FROM %s t, pg_catalog.jsonb_populate_record(NULL::%s, ",
        table, table);
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
    Datum kv[1] = {PointerGetDatum(ignore_key)};
    SPI_execute_with_args(q.data, 1, jtypes, kv, nullptr, true, 1);
    if (SPI_processed > 0 && SPI_gettypeid(SPI_tuptable->tupdesc, 1) == TIDOID &&
        SPI_gettypeid(SPI_tuptable->tupdesc, 2) == OIDOID) {
      ignore = *reinterpret_cast<ItemPointer>(
          DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)));
      ignore_table =
          DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
      ignoring = true;
    }
  }
  scope.restore();
  // A row the caller cannot see is not left out (leaving it out would tell that it conflicts).
  if (ignoring && check_enable_rls(relid, caller, false) == RLS_ENABLED)
    ignoring = visible_to_caller(relid, ignore_table, &ignore);

  List* rules = NIL;
  ListCell* lc;
  foreach (lc, rule_tables(relid)) rules = list_concat(rules, read_rules(lfirst_oid(lc)));
  list_sort(rules, compare_rule_names);
  foreach (lc, rules) {
    CHECK_FOR_INTERRUPTS();
    const Rule& r = *static_cast<const Rule*>(lfirst(lc));
    scope.enter(rel_owner(r.tbl), true);
    Oid types[3] = {rel->rd_rel->reltype, TIDOID, OIDOID};
    SPIPlanPtr plan = SPI_prepare(check_sql(rel, r), 3, types);
    if (plan == nullptr)
      elog(ERROR, "slotguard: could not prepare the check of overlap rule \"%s\": %s", r.name,
           SPI_result_code_string(SPI_result));
    run_check(plan, row, ignoring ? &ignore : nullptr, ignore_table, nullptr);
    scope.restore();
    SPITupleTable* found = SPI_tuptable;
    const uint64 n = SPI_processed;
    const Sweep s = sweep(r, found, n);
    if (!s.found) continue;
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
        const Oid t =
            DatumGetObjectId(SPI_getbinval(found->vals[i], found->tupdesc, kColTable, &in));
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
  SPI_finish();
  table_close(rel, AccessShareLock);
  return (Datum)0;
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
  if (IsA(tree, CreateStmt) || IsA(tree, CreateForeignTableStmt)) {
    const auto* cs = reinterpret_cast<const CreateStmt*>(tree);
    const bool foreign = IsA(tree, CreateForeignTableStmt);
    ListCell* lc;
    foreach (lc, cs->inhRelations) {
      const Oid parent = RangeVarGetRelid(lfirst_node(RangeVar, lc), NoLock, true);
      if (!OidIsValid(parent)) continue;
      if (cs->partbound == nullptr || foreign) refuse_inheritance(parent, cs->relation->relname);
    }
  } else if (IsA(tree, AlterTableStmt)) {
    const auto* as = reinterpret_cast<const AlterTableStmt*>(tree);
    if (as->objtype != OBJECT_TABLE && as->objtype != OBJECT_FOREIGN_TABLE) PG_RETURN_VOID();
    ListCell* lc;
    foreach (lc, as->cmds) {
      const auto* cmd = lfirst_node(AlterTableCmd, lc);
      if (cmd->subtype == AT_AddInherit) {
        const Oid parent = RangeVarGetRelid(reinterpret_cast<RangeVar*>(cmd->def), NoLock, true);
        if (OidIsValid(parent)) refuse_inheritance(parent, as->relation->relname);
      } else if (cmd->subtype == AT_AttachPartition) {
        const auto* pc = reinterpret_cast<const PartitionCmd*>(cmd->def);
        const Oid parent = RangeVarGetRelid(as->relation, NoLock, true);
        const Oid part = RangeVarGetRelid(pc->name, NoLock, true);
        if (!OidIsValid(parent) || !OidIsValid(part)) continue;
        if (get_rel_relkind(part) == RELKIND_FOREIGN_TABLE) {
          refuse_inheritance(parent, pc->name->relname);
          continue;
        }
        List* rules = NIL;
        ListCell* tc;
        foreach (tc, rule_tables(parent)) rules = list_concat(rules, read_rules(lfirst_oid(tc)));
        if (rules == NIL) continue;
        if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "slotguard: SPI_connect failed");
        ListCell* rc;
        foreach (rc, rules) validate_rows(part, *static_cast<const Rule*>(lfirst(rc)));
        SPI_finish();
      }
    }
  }
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
