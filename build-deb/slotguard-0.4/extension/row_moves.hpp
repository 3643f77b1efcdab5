// row_moves: lets an AFTER ROW trigger see a cross-partition UPDATE as the update it is.
//
// PostgreSQL 15 runs an UPDATE that moves a row to another partition (ExecCrossPartitionUpdate in
// nodeModifyTable.c) as a DELETE from the source leaf followed by an INSERT into the destination
// leaf, and fires the leaves' row triggers for those two events: a trigger of the partitioned
// table (cloned onto every leaf) sees a DELETE and an INSERT, never an UPDATE with old and new
// row. PostgreSQL queues the root's own AFTER UPDATE event only for foreign-key triggers.
//
// What links the two halves, for a heap table:
//  - the source tuple's t_ctid carries the "moved partitions" marker (heap_delete with
//    changingPart), which no plain DELETE sets: an AFTER DELETE trigger that sees it knows the
//    row moved;
//  - both halves are written by the same ModifyTable node with the statement's command id, in the
//    same (sub)transaction: xmax/cmax of the source tuple equal xmin/cmin of the new one;
//  - their AFTER ROW events are queued in that order, the source's DELETE right before the
//    destination's INSERT, and fired in queue order at the end of the statement.
// So an AFTER DELETE trigger that sees the marker remembers what it needs of the old row (keyed by
// the trigger's arguments, which its clones on every leaf share), and the AFTER INSERT trigger of
// the same statement claims it. Rows of other table access methods carry no marker: their moves
// stay a DELETE and an INSERT.
#pragma once

#include "pg.hpp"

namespace sg::moves {

// Kinds of remembered states, so that two trigger functions with equal arguments never mix.
enum class Kind { kConsumed = 0, kTransition = 1, kAudit = 2 };

// moved_out says whether `deleted` (the old row of an AFTER DELETE event) was deleted by this
// transaction as the source half of a cross-partition UPDATE.
bool moved_out(HeapTuple deleted);

// remember returns a zeroed payload of `size` bytes, to fill, for the destination half of the
// move of `deleted` (moved_out() true), for triggers of kind `kind` with tg's arguments. Anything
// the payload points to must be allocated in *mcxt, which lives as long as the payload.
void* remember(Kind kind, const Trigger* tg, HeapTuple deleted, Size size, MemoryContext* mcxt);

// claim returns the payload remembered for the move whose destination half `inserted` is (the new
// row of an AFTER INSERT event), or NULL when `inserted` was not moved there by a trigger of the
// same kind and arguments. The payload stays valid until the next remember() or claim(): copy
// what is needed first. Cheap when nothing is remembered.
void* claim(Kind kind, const Trigger* tg, HeapTuple inserted);

// trigger_root returns the table that trigger tg (fired on relation relid) was created on: relid
// itself, or for a clone on a partition the partitioned table whose trigger it was cloned from,
// followed up to the top. One catalog look-up per level; call it once per statement.
Oid trigger_root(const Trigger* tg, Oid relid);

}  // namespace sg::moves
