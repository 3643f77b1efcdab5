// stats: slotguard's counters (the view slotguard.stats). They live in shared memory when the
// library is in shared_preload_libraries; otherwise counting is a no-op and the view says
// counters_enabled = 0. Counting is an atomic add on a shared entry found through a backend-local
// cache; only the first use of an object in a backend takes the hash table's lock, in shared mode,
// and only creating an object's entry takes it exclusively for a moment. The table has a fixed
// number of entries (slotguard.stats_max_entries, set at server start): once it is full, counts of
// objects without an entry are dropped and counted (an atomic add), without the exclusive lock;
// stats_reset() frees entries.
#pragma once

#include "pg.hpp"

namespace sg::stats {

enum class Scope : int32 { kTable = 1, kSlot = 2, kRule = 3 };

// Metrics, per scope (their names are in stats.cpp).
enum TableMetric { kVersionedUpdates = 0, kVersionConflicts = 1 };
enum SlotMetric {
  kReservations = 0,
  kSoldOutRejections = 1,  // reserve answered SG003 (sold out, or the holder already booked)
  kConfirmations = 2,
  kCancellations = 3,
  kExpirations = 4
};
enum RuleMetric { kChecks = 0, kRejections = 1 };

// count adds n to one counter; it never raises an error and never waits on a writer.
void count(Scope scope, int64 object, int metric, uint64 n = 1);

// enabled says whether the counters live in shared memory.
bool enabled();

// define_settings defines slotguard.stats_max_entries; called from _PG_init, preloaded or not.
void define_settings();

// install_hooks requests shared memory; called from _PG_init during preload only.
void install_hooks();

}  // namespace sg::stats
