// row_moves: see row_moves.hpp. PostgreSQL-style code: palloc'd data only, no C++ objects.
#include "row_moves.hpp"

namespace sg::moves {

namespace {

struct Entry {
  Kind kind;
  TransactionId xid;
  CommandId cid;
  int nargs;
  char** args;  // copies of the trigger's arguments
  void* payload;
  MemoryContext mcxt;  // holds args and payload
};

// Remembered entries, oldest first. An entry is claimed by the next AFTER INSERT event of the same
// statement (xid, cid) and trigger arguments; entries of other statements stay, because a trigger
// fired between the two halves may run statements of its own (which move rows too). An entry
// nobody claims (the destination's trigger disabled) goes when its transaction or subtransaction
// is over, or, oldest first, when kMaxEntries are pending: the number pending at once is normally
// the number of slotguard triggers on one partition.
constexpr int kMaxEntries = 256;
Entry entries[kMaxEntries];
int count = 0;
MemoryContext parent = nullptr;

bool same_args(const Entry& e, Kind kind, const Trigger* tg) {
  if (e.kind != kind || e.nargs != tg->tgnargs) return false;
  for (int i = 0; i < e.nargs; i++)
    if (strcmp(e.args[i], tg->tgargs[i]) != 0) return false;
  return true;
}

// prune forgets consumed entries and those of transactions that are over (committed, aborted,
// or a subtransaction rolled back).
void prune() {
  int kept = 0;
  for (int i = 0; i < count; i++) {
    Entry& e = entries[i];
    if (e.kind != Kind::kConsumed && TransactionIdIsCurrentTransactionId(e.xid))
      entries[kept++] = e;
    else
      MemoryContextDelete(e.mcxt);
  }
  count = kept;
}

}  // namespace

bool moved_out(HeapTuple deleted) {
  if (deleted == nullptr || deleted->t_data == nullptr) return false;
  HeapTupleHeader h = deleted->t_data;
  if (!HeapTupleHeaderIndicatesMovedPartitions(h)) return false;
  return TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetUpdateXid(h));
}

void* remember(Kind kind, const Trigger* tg, HeapTuple deleted, Size size, MemoryContext* mcxt) {
  HeapTupleHeader h = deleted->t_data;
  const TransactionId xid = HeapTupleHeaderGetUpdateXid(h);
  const CommandId cid = HeapTupleHeaderGetCmax(h);
  prune();
  if (count == kMaxEntries) {  // forget the oldest
    MemoryContextDelete(entries[0].mcxt);
    for (int j = 1; j < count; j++) entries[j - 1] = entries[j];
    count--;
  }
  if (parent == nullptr)
    parent = AllocSetContextCreate(TopMemoryContext, "slotguard row moves", ALLOCSET_SMALL_SIZES);
  MemoryContext own = AllocSetContextCreate(parent, "slotguard row move", ALLOCSET_SMALL_SIZES);
  MemoryContext old = MemoryContextSwitchTo(own);
  Entry& e = entries[count];
  e.kind = kind;
  e.xid = xid;
  e.cid = cid;
  e.nargs = tg->tgnargs;
  e.args = static_cast<char**>(palloc(sizeof(char*) * (tg->tgnargs > 0 ? tg->tgnargs : 1)));
  for (int i = 0; i < tg->tgnargs; i++) e.args[i] = pstrdup(tg->tgargs[i]);
  e.payload = palloc0(size);
  e.mcxt = own;
  MemoryContextSwitchTo(old);
  count++;
  *mcxt = own;
  return e.payload;
}

void* claim(Kind kind, const Trigger* tg, HeapTuple inserted) {
  if (count == 0 || inserted == nullptr || inserted->t_data == nullptr) return nullptr;
  HeapTupleHeader h = inserted->t_data;
  const TransactionId xid = HeapTupleHeaderGetXmin(h);
  if (!TransactionIdIsCurrentTransactionId(xid)) return nullptr;
  const CommandId cid = HeapTupleHeaderGetCmin(h);
  prune();
  for (int i = 0; i < count; i++) {
    Entry& e = entries[i];
    if (e.xid == xid && e.cid == cid && same_args(e, kind, tg)) {
      e.kind = Kind::kConsumed;  // its memory stays until the next prune()
      return e.payload;
    }
  }
  return nullptr;
}

Oid trigger_root(const Trigger* tg, Oid relid) {
  if (!tg->tgisclone) return relid;
  Relation catalog = table_open(TriggerRelationId, AccessShareLock);
  Oid trigger = tg->tgoid;
  Oid root = relid;
  // A partition tree is at most as deep as relations can nest; bound the walk all the same.
  for (int depth = 0; OidIsValid(trigger) && depth < 1000; depth++) {
    CHECK_FOR_INTERRUPTS();
    ScanKeyData key;
    ScanKeyInit(&key, Anum_pg_trigger_oid, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(trigger));
    SysScanDesc scan = systable_beginscan(catalog, TriggerOidIndexId, true, nullptr, 1, &key);
    HeapTuple tuple = systable_getnext(scan);
    if (!HeapTupleIsValid(tuple)) {
      systable_endscan(scan);
      break;
    }
    const auto* form = reinterpret_cast<Form_pg_trigger>(GETSTRUCT(tuple));
    root = form->tgrelid;
    trigger = form->tgparentid;
    systable_endscan(scan);
  }
  table_close(catalog, AccessShareLock);
  return root;
}

}  // namespace sg::moves
