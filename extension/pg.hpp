// pg.hpp: the one place that includes PostgreSQL's C headers into C++ (postgres.h first, inside
// extern "C"); every file of extension/ includes PostgreSQL only through this one. Pure C++ code
// (common/) never includes it.
#pragma once

extern "C" {
#include "postgres.h"

// Function manager, set-returning functions, backend globals (MyDatabaseId, GetUserId).
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port.h"

// Tables, tuples, index and catalog scans, transactions.
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/skey.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"

// System catalogs: their row layouts, oids and look-ups.
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"

// Triggers, event triggers, extension scripts, the executor and SPI.
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"

// Parse trees (only_when predicates of overlap rules).
#include "nodes/bitmapset.h"
#include "nodes/parsenodes.h"
#include "nodes/primnodes.h"
#include "parser/parser.h"

// Locks, lightweight locks and shared memory (stats counters, slotguard's own locks).
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

// Hashing, random numbers, encodings.
#include "common/hashfn.h"
#include "common/pg_prng.h"
#include "mb/pg_wchar.h"

// Data types and their functions: arrays, JSON, ranges, timestamps, UUIDs, builtins.
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/rangetypes.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

// Caches and their invalidation, memory contexts, snapshots, resource owners, settings, rights.
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/resowner.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/typcache.h"
}

// PostgreSQL defines these as macros; they clash with the C++ standard library.
#ifdef Min
#undef Min
#endif
#ifdef Max
#undef Max
#endif
