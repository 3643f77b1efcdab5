// overlap_check: slotguard.overlap_trigger(), the AFTER INSERT OR UPDATE trigger of a table with
// an overlap rule: runs for every row written there (the hot path), and raises 23P01 (or 40001)
// when the row would overlap rows of its key beyond the rule's capacity.
//
// How a check is race-free (docs/design.md "How overlap rules stay race-free"): the trigger fires
// AFTER the row is written, takes slotguard's transaction-scoped lock on (rule, key) — so writers
// of one key queue behind each other while writers of other keys never meet — and then looks for
// overlapping rows with a fresh snapshot, which sees every row a writer of that key committed
// before we got the lock. A writer still in progress holds the lock, so it cannot be missed: it
// checks after us and sees our row. A conflicting row that an unfinished transaction is deleting
// or moving is waited for, as an exclusion constraint waits, and the check runs again. Under
// REPEATABLE READ / SERIALIZABLE a conflicting row that is newer than the transaction's snapshot
// gives 40001, as PostgreSQL's own exclusion constraints do; one the snapshot sees gives 23P01.
//
// The trigger finds its rule in the catalog (overlap_cache.cpp), tries the index probe first
// (overlap_probe.cpp) and otherwise runs the rule's check statement (overlap_statement.cpp).
//
// Written in PostgreSQL's style: palloc'd data, no C++ objects with destructors. The one exception
// is the DETAIL of an error, which the error contract (common/error_contract.hpp) formats as a C++
// string: made after the last PostgreSQL call for 23P01, copied into palloc'd memory under
// guard() for 40001.
#include "boundary.hpp"
#include "overlap.hpp"
#include "stats.hpp"
#include "util.hpp"

#include <string>

using namespace sg::overlap;
using sg::Error;

namespace {

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

// palloc_copy returns a palloc'd copy of text. It calls PostgreSQL while a C++ string is alive, so
// under guard().
char* palloc_copy(const std::string& text) {
  return sg::guard([&] { return pstrdup(text.c_str()); });
}

// or_null is how PostgreSQL's %s prints a NULL string.
const char* or_null(const char* text) {
  return text ? text : "(null)";
}

// overlap_detail is the DETAIL of 23P01 as the error contract writes it (docs/errors.md): the
// conflicting row's key and period when the writer may see them (show), else withheld. Pure C++.
std::string overlap_detail(const Rule& r, int32 covered, bool show, const char* key,
                           const char* period) {
  if (r.capacity == 1)
    return show ? sg::errors::overlap_detail(r.name, or_null(key), or_null(period))
                : sg::errors::overlap_detail_withheld(r.name);
  return show ? sg::errors::overlap_capacity_detail(r.name, r.capacity, covered, or_null(key),
                                                    or_null(period))
              : sg::errors::overlap_capacity_detail_withheld(r.name, r.capacity, covered);
}

// serialization_detail is the DETAIL of the 40001 below as the error contract writes it, copied
// into palloc'd memory so that no C++ object is alive when ereport runs.
char* serialization_detail(const Rule& r, bool show, const char* key, const char* period) {
  return palloc_copy(
      show ? sg::errors::overlap_serialization_detail(r.name, or_null(key), or_null(period))
           : sg::errors::overlap_serialization_detail_withheld(r.name));
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
  // No PostgreSQL call from here on: the DETAIL is a C++ string.
  throw Error(ERRCODE_EXCLUSION_VIOLATION, message, overlap_detail(r, s.covered, show, key, period))
      .on(RelationGetRelid(rel), {}, r.name);
}

// raise_serialization_failure: under REPEATABLE READ / SERIALIZABLE, the conflict found with a
// fresh snapshot (s, rows) is with a row this transaction's snapshot cannot see: 40001.
[[noreturn]] void raise_serialization_failure(const Rule& r, const Sweep& s, SPITupleTable* rows,
                                              bool show) {
  sg::stats::count(sg::stats::Scope::kRule, r.id, sg::stats::kRejections);
  const int row = s.first >= 0 ? s.first : 0;
  const char* key = show ? SPI_getvalue(rows->vals[row], rows->tupdesc, kColKey) : nullptr;
  const char* period = show ? SPI_getvalue(rows->vals[row], rows->tupdesc, kColPeriod) : nullptr;
  const char* detail = serialization_detail(r, show, key, period);
  // PostgreSQL's own message and hint of a serialization failure (translated as PostgreSQL's).
  static_assert(sg::errors::kRetryHint == "The transaction might succeed if retried.");
  ereport(ERROR,
          (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
           errmsg("could not serialize access due to concurrent insert or update"),
           errdetail_internal("%s", detail), errhint("The transaction might succeed if retried.")));
  pg_unreachable();
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
      if (!visible.found) raise_serialization_failure(r, s, rows, show);
      rows = SPI_tuptable;
      s = visible;
    }
    raise_overlap(rel, r, s, rows, tuple, show, writer);
  }
  SPI_finish();
  scope.restore();
  return PointerGetDatum(nullptr);
}
