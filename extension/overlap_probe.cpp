// overlap_probe: the overlap trigger's fast path, run on every INSERT and UPDATE the trigger
// checks (overlap_check.cpp), before the SQL check.
//
// A rule without only_when on a plain table is checked the way PostgreSQL checks an exclusion
// constraint: the GiST index over (key columns, period range) is scanned directly for rows that
// have the candidate's keys and overlap its period, with the same fresh snapshot the SQL check
// uses. Capacity 1: finding none is the answer (the common case). Capacity k: the periods of the
// rows found, clipped to the candidate's, are counted as the SQL check's sweep counts them, and
// finding no instant covered more than k times is the answer. A conflict, or anything this probe
// is not sure about, hands over to the SQL check, which finds the rows again and reports the
// conflict (and tells 23P01 from 40001 under REPEATABLE READ / SERIALIZABLE, and waits for a
// transaction deleting a conflicting row).
//
// Written in PostgreSQL's style: palloc'd data, no C++ objects with destructors.
#include "boundary.hpp"
#include "overlap.hpp"

namespace sg::overlap {

namespace {

// type_namespace returns the schema of a type (InvalidOid when it is gone).
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

// Probe is one index probe under way: the rule's index, the candidate's index values, and the
// executor state that computes them (for other rows too).
struct Probe {
  Relation index;
  IndexInfo* info;
  EState* estate;
  Datum values[INDEX_MAX_KEYS];
  bool isnull[INDEX_MAX_KEYS];
};

// index_values computes the index's values (key columns, period range) of the row in slot.
void index_values(Probe* p, TupleTableSlot* slot, Datum* values, bool* isnull) {
  GetPerTupleExprContext(p->estate)->ecxt_scantuple = slot;
  FormIndexDatum(p->info, slot, p->estate, values, isnull);
}

// scan_keys fills keys with the probe's search: the candidate's keys (=) and period (&&). False
// when a value is NULL (*none stays: a NULL never conflicts) or the index has no strategy for an
// operator (*none = false: the SQL check decides).
bool scan_keys(Relation rel, const Rule& r, Probe* p, ScanKeyData* keys, bool* none) {
  TupleDesc desc = RelationGetDescr(rel);
  for (int i = 0; i < r.nkeys + 1; i++) {
    if (p->isnull[i]) return false;  // a NULL key or period never conflicts (as in the SQL check)
    Oid op = OID_RANGE_OVERLAP_OP;
    if (i < r.nkeys) {
      const int att = SPI_fnumber(desc, r.keys[i]);
      op = lookup_type_cache(TupleDescAttr(desc, att - 1)->atttypid, TYPECACHE_EQ_OPR)->eq_opr;
    }
    const int strategy =
        OidIsValid(op) ? get_op_opfamily_strategy(op, p->index->rd_opfamily[i]) : 0;
    if (strategy == 0) {
      *none = false;
      return false;
    }
    ScanKeyEntryInitialize(&keys[i], 0, static_cast<AttrNumber>(i + 1),
                           static_cast<StrategyNumber>(strategy), InvalidOid,
                           p->index->rd_indcollation[i], get_opcode(op), p->values[i]);
  }
  return true;
}

// Overlaps collects, for a rule of capacity k, the periods of the other rows the probe finds,
// clipped to the candidate's period, as the SQL check's sg_clip column has them.
struct Overlaps {
  TypeCacheEntry* tc;
  int n, size;
  RangeBound* lower;
  RangeBound* upper;
};

// add_overlap adds the period of the row in slot, clipped to the candidate's; false when it cannot
// (a NULL period: the SQL check decides).
bool add_overlap(Probe* p, const Rule& r, TupleTableSlot* slot, Overlaps* o) {
  Datum values[INDEX_MAX_KEYS];
  bool isnull[INDEX_MAX_KEYS];
  index_values(p, slot, values, isnull);
  if (isnull[r.nkeys]) return false;
  if (o->tc == nullptr) {
    const Oid range = RangeTypeGetOid(DatumGetRangeTypeP(p->values[r.nkeys]));
    o->tc = lookup_type_cache(range, TYPECACHE_RANGE_INFO);
    if (o->tc->rngelemtype == nullptr) return false;
  }
  RangeType* clip = range_intersect_internal(o->tc, DatumGetRangeTypeP(p->values[r.nkeys]),
                                             DatumGetRangeTypeP(values[r.nkeys]));
  bool empty;
  if (o->n == o->size) {
    o->size = o->size ? 2 * o->size : 8;
    o->lower = static_cast<RangeBound*>(o->lower ? repalloc(o->lower, sizeof(RangeBound) * o->size)
                                                 : palloc(sizeof(RangeBound) * o->size));
    o->upper = static_cast<RangeBound*>(o->upper ? repalloc(o->upper, sizeof(RangeBound) * o->size)
                                                 : palloc(sizeof(RangeBound) * o->size));
  }
  range_deserialize(o->tc, clip, &o->lower[o->n], &o->upper[o->n], &empty);
  if (!empty) o->n++;  // (the SQL check's sweep skips an empty clip too)
  return true;
}

// within_capacity: whether the candidate and the collected periods cover no instant more than
// capacity times (the SQL check's sweep, over the same rows).
bool within_capacity(const Rule& r, Overlaps* o) {
  if (o->n < r.capacity) return true;  // n rows and the candidate: at most n + 1 <= capacity
  auto* events = static_cast<PeriodEvent*>(palloc(sizeof(PeriodEvent) * 2 * o->n));
  for (int i = 0; i < o->n; i++) {
    events[2 * i] = PeriodEvent{&o->lower[i], 1};
    events[2 * i + 1] = PeriodEvent{&o->upper[i], -1};
  }
  const RangeBound* at;
  return 1 + deepest(o->tc, events, 2 * static_cast<size_t>(o->n), &at) <= r.capacity;
}

// scan_finds_none scans the index with the fresh snapshot for other rows of the candidate's keys
// that overlap its period: true when they leave the rule satisfied.
bool scan_finds_none(Relation rel, const Rule& r, Probe* p, ScanKeyData* keys, ItemPointer self) {
  // Rows the same statement wrote before this one (a multi-row UPDATE or INSERT) count too:
  // make them visible, as the SQL check's SPI call does.
  CommandCounterIncrement();
  Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
  const int nkeys = r.nkeys + 1;
  IndexScanDesc scan = index_beginscan(rel, p->index, snapshot, nkeys, 0);
  index_rescan(scan, keys, nkeys, nullptr, 0);
  TupleTableSlot* other = table_slot_create(rel, nullptr);
  Overlaps found{};
  bool none = true;
  while (none && index_getnext_slot(scan, ForwardScanDirection, other)) {
    CHECK_FOR_INTERRUPTS();
    if (!scan->xs_recheck && ItemPointerEquals(&other->tts_tid, self)) continue;
    // Capacity 1: a conflict, or a lossy match to look at closer. Capacity k: the period counts
    // (a lossy match is left to the SQL check).
    none = r.capacity > 1 && !scan->xs_recheck && add_overlap(p, r, other, &found);
  }
  index_endscan(scan);
  ExecDropSingleTupleTableSlot(other);
  UnregisterSnapshot(snapshot);
  return none && within_capacity(r, &found);
}

}  // namespace

// probe_finds_none: for a rule without only_when on a plain table, the index over (keys, period
// range) is scanned as PostgreSQL checks an exclusion constraint. Capacity 1: any other row found
// is a conflict. Capacity k: the periods of the rows found (those of the candidate's keys that
// overlap it, the very rows the SQL check lists) are clipped to the candidate's and counted as the
// SQL check's sweep counts them; within capacity is the answer. Anything else hands over to the
// SQL check, which finds the rows again and decides (and reports, waits, or tells 40001).
bool probe_finds_none(Relation rel, RuleEntry* e, HeapTuple tuple) {
  const Rule& r = *e->rule;
  if (r.only_when[0] != '\0' || r.tbl != RelationGetRelid(rel) ||
      rel->rd_rel->relkind != RELKIND_RELATION || rel->rd_rel->relispartition ||
      rel->rd_rel->relhassubclass)
    return false;
  const Oid index_oid = rule_index(rel, e);
  if (!OidIsValid(index_oid)) return false;
  Probe p;
  p.index = index_open(index_oid, AccessShareLock);
  // The index's own values for the candidate: its key columns and its period range expression.
  p.info = BuildIndexInfo(p.index);
  p.estate = CreateExecutorState();
  TupleTableSlot* candidate = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsHeapTuple);
  ExecStoreHeapTuple(tuple, candidate, false);
  index_values(&p, candidate, p.values, p.isnull);
  bool none = true;
  ScanKeyData keys[INDEX_MAX_KEYS];
  if (scan_keys(rel, r, &p, keys, &none)) none = scan_finds_none(rel, r, &p, keys, &tuple->t_self);
  ExecDropSingleTupleTableSlot(candidate);
  FreeExecutorState(p.estate);
  index_close(p.index, AccessShareLock);
  return none;
}

}  // namespace sg::overlap
