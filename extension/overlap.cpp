// overlap: add_overlap_rule / drop_overlap_rule / find_conflicts and the trigger that keeps rows
// of one key from overlapping in time beyond a capacity (SPEC "Overlap rules").
//
// How a check is race-free (README "How overlap rules stay race-free"): the trigger fires AFTER
// the row is written, takes a transaction-scoped advisory lock on (rule, key) — so writers of one
// key queue behind each other while writers of other keys never meet — and then looks for
// overlapping rows with a fresh snapshot, which sees every row a writer of that key committed
// before we got the lock. A writer still in progress holds the lock, so it cannot be missed: it
// checks after us and sees our row. Under REPEATABLE READ / SERIALIZABLE a conflicting row that is
// newer than the transaction's snapshot gives 40001, as PostgreSQL's own exclusion constraints
// do; one the snapshot sees gives 23P01.
//
// The rule travels in the trigger's arguments:
//   rule id, rule name, capacity, range type ("" for a range column), only_when, message,
//   number of key columns, key columns..., period columns (1 or 2)...
// The check statement is built from them once per backend and kept (SPI_keepplan). It runs as
// the table's owner (like an index expression), with search_path pinned to pg_catalog when the
// rule has an only_when predicate, so neither the writer's rights nor its search_path matter.
//
// Written in PostgreSQL's style: palloc'd data, no C++ objects with destructors.
#include "boundary.hpp"
#include "stats.hpp"
#include "util.hpp"

extern "C" {
#include "access/genam.h"
#include "access/relscan.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/pg_am_d.h"
#include "commands/extension.h"
#include "common/hashfn.h"
#include "catalog/partition.h"
#include "executor/executor.h"
#include "nodes/primnodes.h"
#include "utils/snapmgr.h"
}

namespace {

using sg::Error;

// Rule is a decoded trigger argument list (pointers into the relcache's copy).
struct Rule {
  int32 id;
  const char* name;
  int32 capacity;
  const char* range_type;  // "" for a range column
  const char* only_when;   // "" for none
  const char* message;     // "" for the default
  int nkeys;
  char** keys;
  int nperiod;
  char** period;
};

bool decode_rule(const Trigger* tg, Rule* r) {
  if (tg->tgnargs < 9) return false;
  char** a = tg->tgargs;
  r->id = pg_strtoint32(a[0]);
  r->name = a[1];
  r->capacity = pg_strtoint32(a[2]);
  r->range_type = a[3];
  r->only_when = a[4];
  r->message = a[5];
  r->nkeys = pg_strtoint32(a[6]);
  if (r->nkeys < 1 || 7 + r->nkeys >= tg->tgnargs) return false;
  r->keys = a + 7;
  r->nperiod = tg->tgnargs - 7 - r->nkeys;
  r->period = a + 7 + r->nkeys;
  return r->nperiod == 1 || r->nperiod == 2;
}

// range_sql renders the rule's period over alias as a range expression.
char* range_sql(const Rule& r, const char* alias) {
  if (r.nperiod == 1) return psprintf("%s.%s", alias, quote_identifier(r.period[0]));
  return psprintf("%s(%s.%s, %s.%s, '[)')", r.range_type, alias, quote_identifier(r.period[0]),
                  alias, quote_identifier(r.period[1]));
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

// check_sql builds the statement that lists the rows overlapping a candidate row. $1 is the
// candidate (the table's row type), $2 a ctid to leave out (NULL for none). Each result row:
// (ctid, conflicting key, conflicting row, its period as text, how many rows — the candidate
// included — cover the first instant it shares with the candidate).
char* check_sql(Relation rel, const Rule& r) {
  // The candidate has the row type of rel; the search covers the whole table: for a partition,
  // its partitioned root (a row conflicts with rows of every partition).
  const char* cand_type = sg::util::qualified_name(RelationGetRelid(rel));
  const char* table = cand_type;
  if (rel->rd_rel->relispartition)
    table = sg::util::qualified_name(llast_oid(get_partition_ancestors(RelationGetRelid(rel))));
  const char* pred = r.only_when[0] ? psprintf("(%s)", r.only_when) : "true";
  StringInfoData match;
  initStringInfo(&match);
  TupleDesc desc = RelationGetDescr(rel);
  for (int i = 0; i < r.nkeys; i++) {
    const int att = SPI_fnumber(desc, r.keys[i]);
    if (att <= 0)
      throw Error(ERRCODE_UNDEFINED_COLUMN,
                  psprintf("column \"%s\" of relation \"%s\" does not exist", r.keys[i],
                           RelationGetRelationName(rel)));
    TypeCacheEntry* tc =
        lookup_type_cache(TupleDescAttr(desc, att - 1)->atttypid, TYPECACHE_EQ_OPR);
    if (!OidIsValid(tc->eq_opr))
      throw Error(ERRCODE_UNDEFINED_FUNCTION,
                  psprintf("no equality operator for key column \"%s\"", r.keys[i]));
    appendStringInfo(&match, " AND t.%s %s sg_n.%s", quote_identifier(r.keys[i]),
                     sg::util::operator_sql(tc->eq_opr), quote_identifier(r.keys[i]));
  }
  const char* rt = range_sql(r, "t");
  const char* rn = range_sql(r, "sg_n");
  // A candidate whose period ends before it starts is refused as the rule's CHECK refuses it.
  const char* ordered =
      r.nperiod == 2
          ? psprintf("slotguard.period_is_ordered(%s, %s, %s) AND ", quote_identifier(r.period[0]),
                     quote_identifier(r.period[1]), quote_literal_cstr(r.name))
          : "";
  if (r.capacity == 1)  // any overlap is a conflict: no sweep needed, a plain join is cheaper
    return psprintf(
        "SELECT x.sg_tid, x.sg_key, x.sg_row, x.sg_range::pg_catalog.text, 2::pg_catalog.int4"
        "  FROM (SELECT * FROM (SELECT ($1::%s).*) sg_n0 WHERE %s%s) sg_n,"
        " LATERAL (SELECT t.ctid AS sg_tid, %s AS sg_key, pg_catalog.to_jsonb(t.*) AS sg_row,"
        "                 %s AS sg_range"
        "            FROM %s t WHERE %s%s AND %s OPERATOR(pg_catalog.&&) %s"
        "             AND ($2::pg_catalog.tid IS NULL"
        "                  OR t.ctid OPERATOR(pg_catalog.<>) $2::pg_catalog.tid"
        "                  OR t.tableoid OPERATOR(pg_catalog.<>) $3::pg_catalog.oid)) x"
        " ORDER BY 1",
        cand_type, ordered, pred, key_json_sql(rel, "t"), rt, table, pred, match.data, rt, rn);
  return psprintf(
      "WITH c AS ("
      " SELECT x.* FROM (SELECT * FROM (SELECT ($1::%s).*) sg_n0 WHERE %s%s) sg_n,"
      " LATERAL (SELECT t.ctid AS sg_tid, %s AS sg_key, pg_catalog.to_jsonb(t.*) AS sg_row,"
      "                 %s AS sg_range, %s OPERATOR(pg_catalog.*) %s AS sg_clip"
      "            FROM %s t WHERE %s%s AND %s OPERATOR(pg_catalog.&&) %s"
      "             AND ($2::pg_catalog.tid IS NULL"
      "                  OR t.ctid OPERATOR(pg_catalog.<>) $2::pg_catalog.tid"
      "                  OR t.tableoid OPERATOR(pg_catalog.<>) $3::pg_catalog.oid)) x)"
      " SELECT c1.sg_tid, c1.sg_key, c1.sg_row, c1.sg_range::pg_catalog.text,"
      "        (1 OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM c c2"
      "              WHERE CASE WHEN pg_catalog.lower_inf(c1.sg_clip)"
      "                         THEN pg_catalog.lower_inf(c2.sg_clip)"
      "                         ELSE c2.sg_clip OPERATOR(pg_catalog.@>)"
      "                              pg_catalog.lower(c1.sg_clip) END))::pg_catalog.int4"
      "   FROM c c1 ORDER BY 5 DESC, c1.sg_tid",
      cand_type, ordered, pred, key_json_sql(rel, "t"), rt, rt, rn, table, pred, match.data, rt,
      rn);
}

// What a backend knows of each rule, by trigger: the prepared SQL check and the index the probe
// uses (below). The arguments' hash notices a rule replaced in place. The index choice is made
// again whenever the table's relcache entry is invalidated (ALTER TABLE renaming a column,
// CREATE or DROP INDEX, ...); the plan needs no such care, PostgreSQL's plan cache revalidates it.
struct RuleEntry {
  Oid tgoid;
  Oid relid;
  uint32 args_hash;
  SPIPlanPtr plan;   // nullptr until the SQL check first runs
  bool index_known;  // whether `index` has been chosen since the last invalidation
  Oid index;         // InvalidOid: no index the probe can use
};
HTAB* rule_cache = nullptr;

void forget_indexes(Datum, Oid relid) noexcept {
  HASH_SEQ_STATUS it;
  hash_seq_init(&it, rule_cache);
  while (auto* e = static_cast<RuleEntry*>(hash_seq_search(&it)))
    if (relid == InvalidOid || e->relid == relid) e->index_known = false;
}

uint32 args_hash(const Trigger* tg) {
  uint32 h = 0;
  for (int i = 0; i < tg->tgnargs; i++)
    h = hash_combine(h, hash_bytes(reinterpret_cast<const unsigned char*>(tg->tgargs[i]),
                                   static_cast<int>(strlen(tg->tgargs[i]))));
  return h;
}

// rule_entry: the cache entry of the rule of trigger tg on rel (made, or made again for a rule
// replaced in place).
RuleEntry* rule_entry(Relation rel, const Trigger* tg) {
  if (rule_cache == nullptr) {
    HASHCTL info;
    info.keysize = sizeof(Oid);
    info.entrysize = sizeof(RuleEntry);
    info.hcxt = TopMemoryContext;
    rule_cache =
        hash_create("slotguard overlap rules", 64, &info, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
    CacheRegisterRelcacheCallback(forget_indexes, 0);
  }
  const uint32 h = args_hash(tg);
  bool found;
  auto* e = static_cast<RuleEntry*>(hash_search(rule_cache, &tg->tgoid, HASH_ENTER, &found));
  if (!found || e->args_hash != h || e->relid != RelationGetRelid(rel)) {
    if (found && e->plan) SPI_freeplan(e->plan);
    e->relid = RelationGetRelid(rel);
    e->args_hash = h;
    e->plan = nullptr;
    e->index_known = false;
    e->index = InvalidOid;
  }
  return e;
}

SPIPlanPtr rule_plan(Relation rel, const Trigger* tg, const Rule& r) {
  RuleEntry* e = rule_entry(rel, tg);
  if (e->plan != nullptr) return e->plan;
  Oid types[3] = {rel->rd_rel->reltype, TIDOID, OIDOID};
  SPIPlanPtr plan = SPI_prepare(check_sql(rel, r), 3, types);
  if (plan == nullptr)
    elog(ERROR, "slotguard: could not prepare the check of overlap rule \"%s\": %s", r.name,
         SPI_result_code_string(SPI_result));
  SPI_keepplan(plan);
  e = rule_entry(rel, tg);  // (preparing may have processed invalidations)
  e->plan = plan;
  return plan;
}

// Conflict is the worst overlap found for a candidate row.
struct Conflict {
  bool found;
  int32 covered;  // rows covering the worst instant, the candidate included
  char* key;
  char* period;
};

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

Conflict worst(const Rule& r) {
  Conflict c{false, 0, nullptr, nullptr};
  if (SPI_processed == 0) return c;
  bool isnull;
  c.covered =
      DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5, &isnull));
  c.found = c.covered > r.capacity;
  c.key = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
  c.period = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);
  return c;
}

// expand_message fills {column} placeholders with the candidate's values.
char* expand_message(const char* message, HeapTuple tuple, TupleDesc desc) {
  StringInfoData out;
  initStringInfo(&out);
  for (const char* p = message; *p;) {
    const char* close = *p == '{' ? strchr(p + 1, '}') : nullptr;
    if (close) {
      char* name = pnstrdup(p + 1, close - p - 1);
      const int att = SPI_fnumber(desc, name);
      if (att > 0) {
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
bool key_is_null(const Rule& r, HeapTuple tuple, TupleDesc desc) {
  for (int i = 0; i < r.nkeys; i++) {
    const int att = SPI_fnumber(desc, r.keys[i]);
    if (att <= 0)
      throw Error(
          ERRCODE_UNDEFINED_COLUMN,
          psprintf("key column \"%s\" of overlap rule \"%s\" does not exist", r.keys[i], r.name),
          "", "A column the rule uses was renamed or dropped: drop and add the rule again.");
    bool isnull;
    heap_getattr(tuple, att, desc, &isnull);
    if (isnull) return true;
  }
  return false;
}

// lock_key takes slotguard's transaction-scoped lock of (rule, key of tuple).
void lock_key(const Rule& r, HeapTuple tuple, TupleDesc desc) {
  // Equal keys must take the same lock however they are written (1.0 and 1.00, a date under
  // another DateStyle): hash the values with the type's own hash function, as a hash index would.
  uint64 h = hash_bytes_uint32_extended(static_cast<uint32>(r.id), 0x5347);
  for (int i = 0; i < r.nkeys; i++) {
    const int att = SPI_fnumber(desc, r.keys[i]);
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

// Runs as the table's owner, restricted; with a predicate, search_path is pinned to pg_catalog.
struct CheckScope {
  Oid saved_user;
  int saved_context;
  int guc_level;
  void enter(Oid owner, bool pin_path) {
    GetUserIdAndSecContext(&saved_user, &saved_context);
    SetUserIdAndSecContext(
        owner, saved_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
    guc_level = -1;
    if (pin_path) {
      guc_level = NewGUCNestLevel();
      set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
                        GUC_ACTION_SAVE, true, 0, false);
    }
  }
  void restore() const {
    if (guc_level >= 0) AtEOXact_GUC(true, guc_level);
    SetUserIdAndSecContext(saved_user, saved_context);
  }
};

[[noreturn]] void raise_overlap(Relation rel, const Rule& r, const Conflict& c, HeapTuple tuple) {
  sg::stats::count(sg::stats::Scope::kRule, r.id, sg::stats::kRejections);
  const char* table = sg::util::qualified_name(RelationGetRelid(rel));
  const char* message =
      r.message[0]
          ? expand_message(r.message, tuple, RelationGetDescr(rel))
          : psprintf("conflicting row violates overlap rule \"%s\" on \"%s\"", r.name, table);
  const char* detail =
      r.capacity == 1
          ? psprintf("Rule \"%s\": the row overlaps %s during %s.", r.name, c.key, c.period)
          : psprintf(
                "Rule \"%s\" allows %d at once; %d rows would overlap, among them %s during "
                "%s.",
                r.name, r.capacity, c.covered, c.key, c.period);
  throw Error(ERRCODE_EXCLUSION_VIOLATION, message, detail).on(RelationGetRelid(rel), {}, r.name);
}

// ---- the index probe: the common case of a capacity-1 rule, without SPI ---------------------
//
// A rule of capacity 1 without only_when on a plain table is checked the way PostgreSQL checks an
// exclusion constraint: the GiST index over (key columns, period range) is scanned directly for a
// row that has the candidate's keys and overlaps its period, with the same fresh snapshot the SQL
// check uses. Finding none is the answer (the common case); finding one, or anything this probe
// is not sure about, hands over to the SQL check, which finds the conflicting row again and
// reports it (and tells 23P01 from 40001 under REPEATABLE READ / SERIALIZABLE).

Oid type_namespace(Oid type) {
  HeapTuple tuple = SearchSysCache1(TYPEOID, ObjectIdGetDatum(type));
  if (!HeapTupleIsValid(tuple)) return InvalidOid;
  const Oid nsp = reinterpret_cast<Form_pg_type>(GETSTRUCT(tuple))->typnamespace;
  ReleaseSysCache(tuple);
  return nsp;
}

// index_fits says whether index is a GiST index over exactly (rule keys..., rule period range).
bool index_fits(Relation rel, Relation index, const Rule& r) {
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
  // The constructor of the rule's range type (the rule names the type schema-qualified): a
  // function of the type's name, in the type's schema, returning that type.
  const Oid range = DatumGetObjectId(DirectFunctionCall1(regtypein, CStringGetDatum(r.range_type)));
  const char* type_name = strrchr(r.range_type, '.');
  type_name = type_name ? type_name + 1 : r.range_type;
  const char* func_name = get_func_name(f->funcid);
  return f->funcresulttype == range && func_name != nullptr && strcmp(func_name, type_name) == 0 &&
         get_func_namespace(f->funcid) == type_namespace(range);
}

// rule_index finds (and remembers per trigger, until the table changes) the index the probe can
// use.
Oid rule_index(Relation rel, const Trigger* tg, const Rule& r) {
  RuleEntry* e = rule_entry(rel, tg);
  if (e->index_known) return e->index;
  Oid chosen = InvalidOid;
  List* indexes = RelationGetIndexList(rel);
  ListCell* lc;
  foreach (lc, indexes) {
    Relation index = index_open(lfirst_oid(lc), AccessShareLock);
    const bool fits = index_fits(rel, index, r);
    index_close(index, AccessShareLock);
    if (fits) {
      chosen = lfirst_oid(lc);
      break;
    }
  }
  e = rule_entry(rel, tg);  // (opening the indexes may have processed invalidations)
  e->index = chosen;
  e->index_known = true;
  return chosen;
}

// probe_finds_none: true when the rule's index shows no other row of the candidate's keys that
// overlaps its period; false when it shows one, or when the probe cannot tell.
bool probe_finds_none(Relation rel, const Trigger* tg, const Rule& r, HeapTuple tuple) {
  // (Inheritance children: the SQL check reads them too, the parent's index does not cover them.)
  if (r.capacity != 1 || r.only_when[0] != '\0' || rel->rd_rel->relkind != RELKIND_RELATION ||
      rel->rd_rel->relispartition || rel->rd_rel->relhassubclass)
    return false;
  const Oid index_oid = rule_index(rel, tg, r);
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

// slotguard.overlap_trigger(rule...): AFTER INSERT OR UPDATE FOR EACH ROW of a table with an
// overlap rule.
SG_FUNCTION(sg_overlap_trigger) {
  if (!CALLED_AS_TRIGGER(fcinfo))
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                "slotguard.overlap_trigger() called outside a trigger");
  auto* td = reinterpret_cast<TriggerData*>(fcinfo->context);
  Rule r;
  if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
      !decode_rule(td->tg_trigger, &r))
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                "slotguard.overlap_trigger() must fire AFTER ... FOR EACH ROW with a rule");
  Relation rel = td->tg_relation;
  TupleDesc desc = RelationGetDescr(rel);
  HeapTuple tuple = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
  if (key_is_null(r, tuple, desc)) return PointerGetDatum(nullptr);
  sg::stats::count(sg::stats::Scope::kRule, r.id, sg::stats::kChecks);
  lock_key(r, tuple, desc);
  if (probe_finds_none(rel, td->tg_trigger, r, tuple)) return PointerGetDatum(nullptr);

  CheckScope scope;
  scope.enter(rel->rd_rel->relowner, r.only_when[0] != '\0');
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "slotguard: SPI_connect failed");
  SPIPlanPtr plan = rule_plan(rel, td->tg_trigger, r);
  const Datum candidate = heap_copy_tuple_as_datum(tuple, desc);
  run_check(plan, candidate, &tuple->t_self, RelationGetRelid(rel), GetLatestSnapshot());
  Conflict c = worst(r);
  if (c.found && IsolationUsesXactSnapshot()) {
    // The conflict may be with a row our snapshot cannot see: then it is a serialization failure.
    run_check(plan, candidate, &tuple->t_self, RelationGetRelid(rel), GetTransactionSnapshot());
    const Conflict visible = worst(r);
    if (!visible.found) {
      sg::stats::count(sg::stats::Scope::kRule, r.id, sg::stats::kRejections);
      ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
                      errmsg("could not serialize access due to concurrent insert or update"),
                      errdetail("Overlap rule \"%s\": a conflicting row was committed after this "
                                "transaction's snapshot: %s during %s.",
                                r.name, c.key, c.period),
                      errhint("The transaction might succeed if retried.")));
    }
    c = visible;
  }
  if (c.found) raise_overlap(rel, r, c, tuple);
  SPI_finish();
  scope.restore();
  return PointerGetDatum(nullptr);
}

namespace {

// ---- add / drop -----------------------------------------------------------------------------

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

char** name_array(ArrayType* a, int* n, const char* what) {
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

int32 rule_id(Oid relid, const char* name, bool* found) {
  sg::util::OwnerScope owner;
  owner.enter(sg::util::audit_owner());
  Oid types[2] = {OIDOID, NAMEOID};
  Datum v[2] = {ObjectIdGetDatum(relid), CStringGetDatum(name)};
  v[1] = DirectFunctionCall1(namein, CStringGetDatum(name));
  SPI_execute_with_args(
      "SELECT id FROM slotguard.overlap_rule_defs WHERE tbl OPERATOR(pg_catalog.=) $1 "
      "AND rule_name OPERATOR(pg_catalog.=) $2",
      2, types, v, nullptr, true, 1);
  owner.restore();
  *found = SPI_processed > 0;
  if (!*found) return 0;
  bool isnull;
  return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

}  // namespace

// slotguard.add_overlap_rule(tbl, rule_name, key_columns, period_columns, capacity, only_when,
// message): validates the existing rows, then installs the rule's trigger, CHECK and index.
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
  sg::util::check_table(relid, true);
  LockRelationOid(relid, ShareRowExclusiveLock);

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
  // Validate the predicate by using it.
  if (only_when[0])
    sg::util::spi_exec(psprintf("SELECT FROM %s WHERE (%s) LIMIT 0", table, only_when));

  // The catalog row gives the rule its id.
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

  StringInfoData keys_sql, period_sql;
  initStringInfo(&keys_sql);
  initStringInfo(&period_sql);
  for (int i = 0; i < nkeys; i++)
    appendStringInfo(&keys_sql, "%s%s", i ? ", " : "", quote_identifier(keys[i]));
  for (int i = 0; i < nperiod; i++)
    appendStringInfo(&period_sql, "%s%s", i ? ", " : "", quote_identifier(period[i]));
  Rule r{0, name, capacity, range_type, only_when, message, nkeys, keys, nperiod, period};
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
  if (!OidIsValid(get_extension_oid("btree_gist", true)))
    spi_exec_as_owner("CREATE EXTENSION IF NOT EXISTS btree_gist");
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
  {
    bool isnull;
    r.id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
  }

  // The trigger fires on INSERT and on UPDATE of the columns the rule reads (any UPDATE when the
  // rule has a predicate: its columns are not known here).
  StringInfoData args;
  initStringInfo(&args);
  appendStringInfo(&args, "'%d', %s, '%d', %s, %s, %s, '%d'", r.id, quote_literal_cstr(name),
                   capacity, quote_literal_cstr(range_type), quote_literal_cstr(only_when),
                   quote_literal_cstr(message), nkeys);
  for (int i = 0; i < nkeys; i++) appendStringInfo(&args, ", %s", quote_literal_cstr(keys[i]));
  for (int i = 0; i < nperiod; i++) appendStringInfo(&args, ", %s", quote_literal_cstr(period[i]));
  sg::util::spi_exec(psprintf(
      "CREATE TRIGGER %s AFTER INSERT OR UPDATE%s%s%s%s ON %s FOR EACH ROW "
      "EXECUTE FUNCTION slotguard.overlap_trigger(%s)",
      quote_identifier(trigger_name), only_when[0] ? "" : " OF ", only_when[0] ? "" : keys_sql.data,
      only_when[0] ? "" : ", ", only_when[0] ? "" : period_sql.data, table, args.data));

  // The existing rows must satisfy the rule: check each, as an INSERT of it would be.
  Relation rel = table_open(relid, NoLock);
  Trigger* tg = sg::util::find_trigger(rel, trigger_name);
  SPIPlanPtr plan = nullptr;
  if (tg == nullptr) {
    // The trigger is not in this relcache entry yet; build the plan from the rule directly.
    Oid types[3] = {rel->rd_rel->reltype, TIDOID, OIDOID};
    plan = SPI_prepare(check_sql(rel, r), 3, types);
  } else {
    plan = rule_plan(rel, tg, r);
  }
  const char* self_key_sql = key_json_sql(rel, "t");
  table_close(rel, NoLock);
  Portal cursor = SPI_cursor_open_with_args(
      nullptr, psprintf("SELECT t.ctid, t, %s, t.tableoid FROM %s t", self_key_sql, table), 0,
      nullptr, nullptr, nullptr, true, 0);
  StringInfoData violations;
  initStringInfo(&violations);
  int64 nviolations = 0;
  for (;;) {
    SPI_cursor_fetch(cursor, true, 1000);
    if (SPI_processed == 0) break;
    SPITupleTable* rows = SPI_tuptable;
    const uint64 n = SPI_processed;
    for (uint64 i = 0; i < n; i++) {
      bool isnull;
      ItemPointer tid = reinterpret_cast<ItemPointer>(
          DatumGetPointer(SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull)));
      ItemPointerData self = *tid;
      Datum row = SPI_getbinval(rows->vals[i], rows->tupdesc, 2, &isnull);
      const Oid self_table =
          DatumGetObjectId(SPI_getbinval(rows->vals[i], rows->tupdesc, 4, &isnull));
      run_check(plan, row, &self, self_table, nullptr);
      Conflict c = worst(r);
      if (!c.found) continue;
      // Rows whose own key is NULL or that fail the predicate were not returned as conflicting
      // candidates by the statement (it filters the candidate too).
      nviolations++;
      if (nviolations <= 5) {
        char* self_key = SPI_getvalue(rows->vals[i], rows->tupdesc, 3);
        appendStringInfo(&violations, "%s%s overlaps %s during %s", violations.len ? "; " : "",
                         self_key, c.key, c.period);
      }
    }
    SPI_freetuptable(rows);
  }
  SPI_cursor_close(cursor);
  if (nviolations > 0)
    throw Error(
        ERRCODE_EXCLUSION_VIOLATION,
        psprintf("existing rows of \"%s\" violate overlap rule \"%s\"", get_rel_name(relid), name),
        psprintf("%lld violation%s%s: %s%s.", static_cast<long long>(nviolations),
                 nviolations == 1 ? "" : "s", nviolations > 5 ? ", the first 5" : "",
                 violations.data, nviolations > 5 ? "; ..." : ""))
        .on(relid, {}, name);
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

// slotguard.find_conflicts(tbl, candidate, ignore_key): the rows that an INSERT of candidate would
// conflict with, per rule, without writing anything. Runs with the caller's rights.
SG_FUNCTION(sg_find_conflicts) {
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "tbl and candidate must not be NULL");
  const Oid relid = PG_GETARG_OID(0);
  Jsonb* candidate = PG_GETARG_JSONB_P(1);
  if (!JB_ROOT_IS_OBJECT(candidate) || JB_ROOT_IS_SCALAR(candidate))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                "candidate must be a JSON object of column values");
  sg::util::check_table(relid, false);
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

  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "slotguard: SPI_connect failed");
  Oid jtypes[1] = {JSONBOID};
  Datum jv[1] = {PointerGetDatum(candidate)};
  SPI_execute_with_args(base.data, 1, jtypes, jv, nullptr, false, 1);
  bool isnull;
  const Datum row = SPI_datumTransfer(
      SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull), false, -1);

  // ignore_key: the row being edited, found by primary key.
  ItemPointerData ignore;
  Oid ignore_table = InvalidOid;
  bool ignoring = false;
  if (!PG_ARGISNULL(2)) {
    Bitmapset* pk = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);
    if (pk == nullptr)
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                  psprintf("table \"%s\" has no primary key for ignore_key", table));
    Jsonb* key = PG_GETARG_JSONB_P(2);
    const bool scalar = JB_ROOT_IS_SCALAR(key);
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
    Datum kv[1] = {PointerGetDatum(key)};
    SPI_execute_with_args(q.data, 1, jtypes, kv, nullptr, true, 1);
    if (SPI_processed > 0) {
      ignore = *reinterpret_cast<ItemPointer>(
          DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)));
      ignore_table =
          DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
      ignoring = true;
    }
  }

  TriggerDesc* triggers = rel->trigdesc;
  for (int t = 0; triggers && t < triggers->numtriggers; t++) {
    Trigger* tg = &triggers->triggers[t];
    Rule r;
    if (strncmp(tg->tgname, "slotguard_30_overlap_", 21) != 0) continue;
    if (!decode_rule(tg, &r)) continue;
    SPIPlanPtr plan = rule_plan(rel, tg, r);
    run_check(plan, row, ignoring ? &ignore : nullptr, ignore_table, nullptr);
    const uint64 n = SPI_processed;
    if (n == 0) continue;
    bool in;
    const int32 worst_covered =
        DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5, &in));
    if (worst_covered <= r.capacity) continue;
    for (uint64 i = 0; i < n; i++) {
      // For capacity rules, the rows that cover the worst instant.
      const int32 covered =
          DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 5, &in));
      if (r.capacity > 1 && covered < worst_covered) break;
      Datum values[3] = {DirectFunctionCall1(namein, CStringGetDatum(r.name)),
                         SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &in),
                         SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &in)};
      bool nulls[3] = {false, false, false};
      tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
  }
  SPI_finish();
  table_close(rel, AccessShareLock);
  return (Datum)0;
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
