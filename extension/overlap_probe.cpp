// overlap_probe: the overlap trigger's fast path, run on every INSERT and UPDATE the trigger
// checks (overlap_check.cpp), before the SQL check.
//
// A rule of capacity 1 without only_when on a plain table is checked the way PostgreSQL checks an
// exclusion constraint: the GiST index over (key columns, period range) is scanned directly for a
// row that has the candidate's keys and overlaps its period, with the same fresh snapshot the SQL
// check uses. Finding none is the answer (the common case); finding one, or anything this probe
// is not sure about, hands over to the SQL check, which finds the conflicting row again and
// reports it (and tells 23P01 from 40001 under REPEATABLE READ / SERIALIZABLE, and waits for a
// transaction deleting it).
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

}  // namespace

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

}  // namespace sg::overlap
