// stats: slotguard's counters (see stats.hpp): the shared-memory table set up at server start
// (install_hooks, from _PG_init when preloaded), count() called by the triggers and reservation
// functions, and the SQL functions behind the view slotguard.stats (docs/sql-api.md
// "Monitoring").
#include "stats.hpp"

#include "boundary.hpp"
#include "util.hpp"

namespace sg::stats {

namespace {

constexpr int kMetrics = 8;
// The backend-local cache is forgotten when it holds this many objects (it also remembers objects
// whose counts are being dropped, and those are not bounded by the shared table's size).
constexpr long kMaxLocalObjects = 8192;

int max_entries = 16384;  // slotguard.stats_max_entries, fixed at server start

struct Key {
  int32 scope;
  Oid database;  // every object (table, slot, rule) belongs to one database
  int64 object;
};

struct Entry {
  Key key;
  pg_atomic_uint64 values[kMetrics];
};

struct Shared {
  LWLock* lock;
  pg_atomic_uint64 dropped;  // counts lost because the table of objects was full
  pg_atomic_uint32 full;     // 1 once an insert found no free entry; 0 again after a reset
  pg_atomic_uint64 epoch;    // bumped whenever entries are removed: local caches are then stale
};

// A backend's cache of where an object's counters are; shared == nullptr means the object found
// the table full (its counts are dropped without asking the shared table again).
struct LocalEntry {
  Key key;
  Entry* shared;
};

Shared* shared = nullptr;
HTAB* shared_hash = nullptr;
HTAB* local_hash = nullptr;
uint64 local_epoch = 0;

shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

const char* const kTableMetrics[] = {"versioned_updates", "version_conflicts"};
const char* const kSlotMetrics[] = {"reservations", "sold_out", "confirmations", "cancellations",
                                    "expirations"};
const char* const kRuleMetrics[] = {"checks", "rejections"};

Size shmem_size() {
  return add_size(MAXALIGN(sizeof(Shared)), hash_estimate_size(max_entries, sizeof(Entry)));
}

void request_shmem() {
  if (prev_shmem_request_hook) prev_shmem_request_hook();
  RequestAddinShmemSpace(shmem_size());
  RequestNamedLWLockTranche("slotguard", 1);
}

void startup_shmem() {
  if (prev_shmem_startup_hook) prev_shmem_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  bool found = false;
  shared = static_cast<Shared*>(ShmemInitStruct("slotguard stats", sizeof(Shared), &found));
  if (!found) {
    shared->lock = &(GetNamedLWLockTranche("slotguard"))->lock;
    pg_atomic_init_u64(&shared->dropped, 0);
    pg_atomic_init_u32(&shared->full, 0);
    pg_atomic_init_u64(&shared->epoch, 0);
  }
  HASHCTL info;
  info.keysize = sizeof(Key);
  info.entrysize = sizeof(Entry);
  // HASH_FIXED_SIZE: all max_entries entries are allocated here, within what request_shmem asked
  // for, and an insert into a full table fails (HASH_ENTER_NULL) instead of taking more from
  // PostgreSQL's spare shared memory, which the lock tables need.
  shared_hash = ShmemInitHash("slotguard stats objects", max_entries, max_entries, &info,
                              HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
  LWLockRelease(AddinShmemInitLock);
}

// find_shared returns the shared entry of key, creating it if there is room; NULL when the table
// is full. Once the table has been found full, only the shared-mode lookup is made.
Entry* find_shared(const Key& key) {
  LWLockAcquire(shared->lock, LW_SHARED);
  auto* entry = static_cast<Entry*>(hash_search(shared_hash, &key, HASH_FIND, nullptr));
  LWLockRelease(shared->lock);
  if (entry || pg_atomic_read_u32(&shared->full) != 0) return entry;
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  bool found = false;
  entry = static_cast<Entry*>(hash_search(shared_hash, &key, HASH_ENTER_NULL, &found));
  if (entry == nullptr)
    pg_atomic_write_u32(&shared->full, 1);
  else if (!found)
    for (auto& v : entry->values) pg_atomic_init_u64(&v, 0);
  LWLockRelease(shared->lock);
  return entry;
}

const char* metric_name(int32 scope, int metric) {
  switch (static_cast<Scope>(scope)) {
    case Scope::kTable:
      return metric < 2 ? kTableMetrics[metric] : nullptr;
    case Scope::kSlot:
      return metric < 5 ? kSlotMetrics[metric] : nullptr;
    case Scope::kRule:
      return metric < 2 ? kRuleMetrics[metric] : nullptr;
  }
  return nullptr;
}

const char* scope_name(int32 scope) {
  switch (static_cast<Scope>(scope)) {
    case Scope::kTable:
      return "table";
    case Scope::kSlot:
      return "slot";
    case Scope::kRule:
      return "rule";
  }
  return "unknown";
}

// A copy of one entry, taken under the lock and turned into rows after it is released.
struct EntryCopy {
  Key key;
  uint64 values[kMetrics];
};

}  // namespace

void define_settings() {
  DefineCustomIntVariable(
      "slotguard.stats_max_entries",
      "Number of objects (tables, slots, rules; all databases) whose counters fit in shared "
      "memory; counts of further objects are dropped and counted in slotguard.stats.",
      nullptr, &max_entries, 16384, 16, 4 * 1024 * 1024, PGC_POSTMASTER, 0, nullptr, nullptr,
      nullptr);
}

void install_hooks() {
  prev_shmem_request_hook = shmem_request_hook;
  shmem_request_hook = request_shmem;
  prev_shmem_startup_hook = shmem_startup_hook;
  shmem_startup_hook = startup_shmem;
}

bool enabled() {
  return shared != nullptr && shared_hash != nullptr;
}

void count(Scope scope, int64 object, int metric, uint64 n) {
  if (!enabled() || metric < 0 || metric >= kMetrics) return;
  Key key{static_cast<int32>(scope), MyDatabaseId, object};
  // Entries removed by stats_reset() make cached pointers stale; the epoch says so. (A count
  // racing with a reset may still land in a removed entry: it is then lost, like any count made
  // while a reset zeroes.)
  const uint64 epoch = pg_atomic_read_u64(&shared->epoch);
  if (local_hash != nullptr &&
      (epoch != local_epoch || hash_get_num_entries(local_hash) >= kMaxLocalObjects)) {
    hash_destroy(local_hash);
    local_hash = nullptr;
  }
  if (local_hash == nullptr) {
    local_hash =
        sg::util::backend_hash("slotguard local stats", 256, sizeof(Key), sizeof(LocalEntry));
    local_epoch = epoch;
  }
  auto* local = static_cast<LocalEntry*>(hash_search(local_hash, &key, HASH_FIND, nullptr));
  Entry* entry = nullptr;
  if (local != nullptr) {
    entry = local->shared;
  } else {
    entry = find_shared(key);
    local = static_cast<LocalEntry*>(hash_search(local_hash, &key, HASH_ENTER, nullptr));
    local->shared = entry;
  }
  if (entry == nullptr) {
    pg_atomic_fetch_add_u64(&shared->dropped, n);
    return;
  }
  pg_atomic_fetch_add_u64(&entry->values[metric], n);
}

}  // namespace sg::stats

// slotguard._stats() returns this database's counters as (scope, object, metric, value). The
// entries are copied under the lock in shared mode and turned into rows after it is released, so
// that a backend creating an entry waits only for the copy.
SG_FUNCTION(sg_stats) {
  using namespace sg::stats;
  InitMaterializedSRF(fcinfo, 0);
  auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  if (!enabled()) return (Datum)0;
  LWLockAcquire(shared->lock, LW_SHARED);
  const long size = hash_get_num_entries(shared_hash);
  auto* copies = static_cast<EntryCopy*>(
      palloc_extended(sizeof(EntryCopy) * static_cast<Size>(size + 1), MCXT_ALLOC_HUGE));
  long n = 0;
  HASH_SEQ_STATUS seq;
  hash_seq_init(&seq, shared_hash);
  while (auto* e = static_cast<Entry*>(hash_seq_search(&seq))) {
    if (e->key.database != MyDatabaseId || n >= size) continue;
    copies[n].key = e->key;
    for (int m = 0; m < kMetrics; m++) copies[n].values[m] = pg_atomic_read_u64(&e->values[m]);
    n++;
  }
  LWLockRelease(shared->lock);
  for (long i = 0; i < n; i++) {
    for (int m = 0; m < kMetrics; m++) {
      const char* name = metric_name(copies[i].key.scope, m);
      if (name == nullptr) continue;
      Datum values[4] = {CStringGetTextDatum(scope_name(copies[i].key.scope)),
                         Int64GetDatum(copies[i].key.object), CStringGetTextDatum(name),
                         Int64GetDatum(static_cast<int64>(copies[i].values[m]))};
      bool nulls[4] = {false, false, false, false};
      tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
  }
  pfree(copies);
  return (Datum)0;
}

// slotguard.stats_capacity() returns the counters' own figures, for all databases: objects with
// counters, the most there is room for (slotguard.stats_max_entries), and the counts dropped
// because there was no room. NULLs when the counters are not in shared memory.
SG_FUNCTION(sg_stats_capacity) {
  using namespace sg::stats;
  TupleDesc desc = nullptr;
  if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
    throw sg::Error(ERRCODE_FEATURE_NOT_SUPPORTED, "stats_capacity must return a record");
  desc = BlessTupleDesc(desc);
  Datum values[3] = {0, 0, 0};
  bool nulls[3] = {true, true, true};
  if (enabled()) {
    LWLockAcquire(shared->lock, LW_SHARED);
    values[0] = Int64GetDatum(hash_get_num_entries(shared_hash));
    LWLockRelease(shared->lock);
    values[1] = Int64GetDatum(max_entries);
    values[2] = Int64GetDatum(static_cast<int64>(pg_atomic_read_u64(&shared->dropped)));
    nulls[0] = nulls[1] = nulls[2] = false;
  }
  return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
}

// slotguard._counters_enabled() says whether the counters live in shared memory.
SG_FUNCTION(sg_counters_enabled) {
  return BoolGetDatum(sg::stats::enabled());
}

// slotguard.stats_reset() removes this database's counters (they start again from zero), and
// those of databases that no longer exist, freeing their entries for other objects. Which
// databases exist is looked up before the lock is taken exclusively (a catalog lookup may wait).
SG_FUNCTION(sg_stats_reset) {
  using namespace sg::stats;
  if (!enabled()) PG_RETURN_VOID();
  constexpr int kMaxDatabases = 64;  // gone databases freed per call; the rest at the next one
  Oid gone[kMaxDatabases];
  int n_gone = 0;
  Oid seen[kMaxDatabases];
  int n_seen = 0;
  LWLockAcquire(shared->lock, LW_SHARED);
  HASH_SEQ_STATUS seq;
  hash_seq_init(&seq, shared_hash);
  while (auto* e = static_cast<Entry*>(hash_seq_search(&seq))) {
    const Oid db = e->key.database;
    if (db == MyDatabaseId || n_seen == kMaxDatabases) continue;
    bool known = false;
    for (int i = 0; i < n_seen && !known; i++) known = seen[i] == db;
    if (!known) seen[n_seen++] = db;
  }
  LWLockRelease(shared->lock);
  for (int i = 0; i < n_seen; i++)
    if (!SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(seen[i]))) gone[n_gone++] = seen[i];

  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  hash_seq_init(&seq, shared_hash);
  while (auto* e = static_cast<Entry*>(hash_seq_search(&seq))) {
    bool remove = e->key.database == MyDatabaseId;
    for (int i = 0; i < n_gone && !remove; i++) remove = gone[i] == e->key.database;
    // removing the entry just returned is allowed during a sequential scan
    if (remove) hash_search(shared_hash, &e->key, HASH_REMOVE, nullptr);
  }
  pg_atomic_fetch_add_u64(&shared->epoch, 1);
  pg_atomic_write_u32(&shared->full, 0);
  LWLockRelease(shared->lock);
  PG_RETURN_VOID();
}
