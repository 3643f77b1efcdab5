#include "stats.hpp"

#include "boundary.hpp"

namespace sg::stats {

namespace {

constexpr int kMetrics = 8;
constexpr long kMaxObjects = 16384;

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
};

struct LocalEntry {
  Key key;
  Entry* shared;
};

Shared* shared = nullptr;
HTAB* shared_hash = nullptr;
HTAB* local_hash = nullptr;

shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

const char* const kTableMetrics[] = {"versioned_updates", "version_conflicts"};
const char* const kSlotMetrics[] = {"reservations", "sold_out", "confirmations", "cancellations",
                                    "expirations"};
const char* const kRuleMetrics[] = {"checks", "rejections"};

Size shmem_size() {
  return add_size(MAXALIGN(sizeof(Shared)), hash_estimate_size(kMaxObjects, sizeof(Entry)));
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
  }
  HASHCTL info;
  info.keysize = sizeof(Key);
  info.entrysize = sizeof(Entry);
  shared_hash = ShmemInitHash("slotguard stats objects", kMaxObjects, kMaxObjects, &info,
                              HASH_ELEM | HASH_BLOBS);
  LWLockRelease(AddinShmemInitLock);
}

// find_shared returns the shared entry of key, creating it if needed; NULL when the table is full.
Entry* find_shared(const Key& key) {
  LWLockAcquire(shared->lock, LW_SHARED);
  auto* entry = static_cast<Entry*>(hash_search(shared_hash, &key, HASH_FIND, nullptr));
  LWLockRelease(shared->lock);
  if (entry) return entry;
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  bool found = false;
  entry = static_cast<Entry*>(hash_search(shared_hash, &key, HASH_ENTER_NULL, &found));
  if (entry && !found)
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

}  // namespace

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
  if (local_hash == nullptr) {
    HASHCTL info;
    info.keysize = sizeof(Key);
    info.entrysize = sizeof(LocalEntry);
    info.hcxt = TopMemoryContext;
    local_hash =
        hash_create("slotguard local stats", 256, &info, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
  }
  auto* local = static_cast<LocalEntry*>(hash_search(local_hash, &key, HASH_FIND, nullptr));
  Entry* entry = local ? local->shared : nullptr;
  if (entry == nullptr) {
    entry = find_shared(key);
    if (entry == nullptr) {
      pg_atomic_fetch_add_u64(&shared->dropped, n);
      return;
    }
    bool found = false;
    local = static_cast<LocalEntry*>(hash_search(local_hash, &key, HASH_ENTER, &found));
    local->shared = entry;
  }
  pg_atomic_fetch_add_u64(&entry->values[metric], n);
}

}  // namespace sg::stats

// slotguard._stats() returns this database's counters as (scope, object, metric, value).
SG_FUNCTION(sg_stats) {
  using namespace sg::stats;
  InitMaterializedSRF(fcinfo, 0);
  auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  if (!enabled()) return (Datum)0;
  LWLockAcquire(shared->lock, LW_SHARED);
  HASH_SEQ_STATUS seq;
  hash_seq_init(&seq, shared_hash);
  while (auto* e = static_cast<Entry*>(hash_seq_search(&seq))) {
    if (e->key.database != MyDatabaseId) continue;
    for (int m = 0; m < kMetrics; m++) {
      const char* name = metric_name(e->key.scope, m);
      if (name == nullptr) continue;
      Datum values[4] = {CStringGetTextDatum(scope_name(e->key.scope)),
                         Int64GetDatum(e->key.object), CStringGetTextDatum(name),
                         Int64GetDatum(static_cast<int64>(pg_atomic_read_u64(&e->values[m])))};
      bool nulls[4] = {false, false, false, false};
      tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
  }
  LWLockRelease(shared->lock);
  return (Datum)0;
}

// slotguard._counters_enabled() says whether the counters live in shared memory.
SG_FUNCTION(sg_counters_enabled) {
  return BoolGetDatum(sg::stats::enabled());
}

// slotguard.stats_reset() sets this database's counters to zero.
SG_FUNCTION(sg_stats_reset) {
  using namespace sg::stats;
  if (!enabled()) PG_RETURN_VOID();
  LWLockAcquire(shared->lock, LW_SHARED);
  HASH_SEQ_STATUS seq;
  hash_seq_init(&seq, shared_hash);
  while (auto* e = static_cast<Entry*>(hash_seq_search(&seq)))
    if (e->key.database == MyDatabaseId)
      for (auto& v : e->values) pg_atomic_write_u64(&v, 0);
  LWLockRelease(shared->lock);
  PG_RETURN_VOID();
}
