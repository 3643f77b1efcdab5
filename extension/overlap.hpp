// overlap: rules that keep rows of one key from overlapping in time beyond a capacity (README
// "Overlap rules"). What the overlap files share, and which file does what, by when it runs:
//
//   overlap_cache.cpp      rules as slotguard.overlap_rule_defs holds them; each backend's cache of
//                          them by trigger, with the prepared check
//   overlap_statement.cpp  the check statement built from a rule, the restricted scope it runs in,
//                          and the count of the rows it finds (sweep)
//   overlap_check.cpp      slotguard.overlap_trigger(): the check of every INSERT and UPDATE (the
//                          hot path), race-free; 23P01 and 40001
//   overlap_probe.cpp      the trigger's fast path: a scan of the rule's index, whose rows are
//                          counted against the capacity as the sweep counts them
//   overlap_conflicts.cpp  find_conflicts(): the same check for a row not written
//   overlap_rules.cpp      add_overlap_rule / drop_overlap_rule, the validation of existing rows,
//                          the DDL event trigger (partitions, inheritance), period_is_ordered
//
// Everything here is written in PostgreSQL's style: palloc'd data, no C++ objects with
// destructors, so it may be called unguarded (boundary.hpp).
#pragma once

#include "pg.hpp"

namespace sg::overlap {

// ---- rules (overlap_cache.cpp) --------------------------------------------------------------

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

// read_rules returns the rules added to table tbl (Rule*, palloc'd in the current context), read
// with a fresh snapshot. It reads the catalog directly: callers need no right on it.
List* read_rules(Oid tbl);

// name_list returns the elements of a one-dimensional name[] (palloc'd), or nullptr when one of
// them is NULL.
char** name_list(ArrayType* a, int* n);

// rule_tables: relid, then its partition ancestors (whose rules cover relid's rows too).
List* rule_tables(Oid relid);

// rules_covering returns the rules of relid and of its partition ancestors (Rule*).
List* rules_covering(Oid relid);

// rel_owner returns the owner of relid (42P01 when it is gone).
Oid rel_owner(Oid relid);

// RuleEntry is what a backend knows of one rule, by trigger: the rule read from the catalog, the
// prepared SQL check and the index the probe uses (overlap_probe.cpp).
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

// trigger_entry returns the cache entry of trigger tg on rel, reading its rule when needed; a
// trigger without a rule in the catalog is refused (55000).
RuleEntry* trigger_entry(Relation rel, const Trigger* tg);

// rule_plan returns the entry's prepared check (preparing it in the caller's CheckScope).
SPIPlanPtr rule_plan(RuleEntry* e, Relation rel);

// ---- the check statement (overlap_statement.cpp) --------------------------------------------

// range_type_for picks the range type of a period of type `type` (nullptr: not supported).
const char* range_type_for(Oid type);

// rule_column is the attribute number of a column the rule names, or a clear error when the table
// no longer has it (renamed or dropped since the rule was added).
AttrNumber rule_column(Relation rel, const Rule& r, const char* column, const char* what);

// rule_range_type checks the rule's columns against rel as it is now and returns the range type
// of a two-column period ("" for a range column).
const char* rule_range_type(Relation rel, const Rule& r);

// check_predicate refuses an only_when that is not exactly one expression.
void check_predicate(const char* pred);

// key_json_sql renders the primary key of alias as a jsonb object (or its ctid, without one).
char* key_json_sql(Relation rel, const char* alias);

// check_sql builds the statement that lists the rows of the rule's table that overlap a candidate
// row of rel; prepare_check prepares it (not kept: the caller frees or keeps the plan).
char* check_sql(Relation rel, const Rule& r);
SPIPlanPtr prepare_check(Relation rel, const Rule& r);

// Columns of the check's result.
enum : int { kColTable = 1, kColTid, kColKey, kColRow, kColPeriod, kColClip, kNumCols = kColClip };

// run_check runs the rule's statement for candidate (a row-type Datum), leaving out `self`.
// With a snapshot, it is used instead of the current one. Rows land in SPI_tuptable.
void run_check(SPIPlanPtr plan, Datum candidate, ItemPointer self, Oid self_table,
               Snapshot snapshot);

// Sweep is what the check's rows mean for the candidate.
struct Sweep {
  bool found;     // the rule is violated
  int32 covered;  // rows covering the worst instant, the candidate included
  int first;      // the first row (in the result's order) that covers it
  bool* covers;   // per result row: whether it covers the worst instant
};

// sweep finds the instant covered by the most of the n rows of the check's result t.
Sweep sweep(const Rule& r, SPITupleTable* t, uint64 n);

// PeriodEvent is one bound of a period being counted: +1 a period starts covering, -1 it stops.
struct PeriodEvent {
  const RangeBound* bound;
  int delta;
};

// deepest counts the periods whose bounds are the m events (sorting them; tc: the range type):
// how many cover the instant covered by the most of them, *at receiving its bound. sweep and the
// probe (overlap_probe.cpp) count with it.
int32 deepest(TypeCacheEntry* tc, PeriodEvent* events, size_t m, const RangeBound** at);

// CheckScope: the check runs as the owner of the rule's table, restricted (no SET ROLE, no
// transaction control, ...), and not subject to the owner's own FORCE ROW LEVEL SECURITY (rows a
// policy hides must still count, as for PostgreSQL's foreign-key checks). With pin_path,
// search_path is pinned to pg_catalog, pg_temp and standard_conforming_strings on, so a
// predicate means what it meant when the rule was added.
struct CheckScope {
  Oid saved_user;
  int saved_context;
  int guc_level;
  void enter(Oid owner, bool pin_path);
  void restore() const;
};

// ---- the trigger's index probe (overlap_probe.cpp) ------------------------------------------

// probe_finds_none: true when the rule's index shows no other row of the candidate's keys that
// overlaps its period; false when it shows one, or when the probe cannot tell.
bool probe_finds_none(Relation rel, RuleEntry* e, HeapTuple tuple);

}  // namespace sg::overlap
