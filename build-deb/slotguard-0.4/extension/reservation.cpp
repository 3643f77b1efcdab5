// reservation: slots, holds and bookings (SPEC "Slot-seat reservation").
//
// Design (README "Hot slots"):
// - A plain-capacity slot's seats are split over up to 64 rows of slotguard.slot_shards. A buyer
//   locks one shard with room (FOR UPDATE SKIP LOCKED, from a random start), inserts the booking
//   and adds its seats to the shard's `used`: buyers of one slot run in parallel. Only when no
//   unlocked shard has room does a buyer lock every shard of the slot (in shard order), reclaim,
//   move free capacity to one shard, and book there — or answer sold out with an exact count.
// - `used` counts the seats of the shard's pending and confirmed bookings. A hold is dead the
//   moment it expires; its seats are taken back (status 'expired', `used` lowered) by whoever next
//   needs them — a buyer, cancel, or expire_holds — under the shard's lock. That write conflicts
//   with a concurrent confirm of the same booking (its row lock), so a hold that is confirmed is
//   never also given away, and an expired hold is never confirmed.
// - Numbered seats have one row each in slotguard.seats, pointing at the booking that took them;
//   a seat is free when that booking is dead. Lock order everywhere: shard or seat rows, then
//   booking rows — so cancel locks the shard before the booking, and confirm touches neither.
//
// All functions here are SECURITY DEFINER with a pinned search_path (see the install script).
// The code is written in PostgreSQL's style — palloc'd data, no C++ objects with destructors — so
// PostgreSQL errors may longjmp through it; slotguard's own errors are thrown as sg::Error.
#include "boundary.hpp"
#include "stats.hpp"
#include "util.hpp"

extern "C" {
#include "common/hashfn.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_proc.h"
#include "common/pg_prng.h"
#include "executor/executor.h"
#include "utils/datum.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
}

namespace {

using sg::Error;

// ---- prepared statements ----------------------------------------------------------------------

enum Plan {
  kSlot,
  kIdempotent,
  kHolderLive,
  kShardPick,
  kFastBook,
  kShardsRoom,
  kShardWait,
  kSeatsFreeCount,
  kShardReclaim,
  kShardMinExpiry,
  kShardUsed,
  kShardGrow,
  kShardsAll,
  kShardLock,
  kShardLockRoom,
  kShardAddHold,
  kInsertBooking,
  kSeatsCandidates,
  kSeatsCandidatesAll,
  kSeatsReclaim,
  kSeatsCheck,
  kSeatsByLabel,
  kSeatsAssign,
  kBookingGet,
  kBookingRead,
  kBookingLock,
  kConfirm,
  kCancel,
  kExpireShards,
  kExpireSeatBookings,
  kAvailability,
  kNextExpiry,
  kInsertSlot,
  kInsertShards,
  kInsertSeats,
  kPlanCount
};

struct PlanDef {
  const char* sql;
  int nargs;
  Oid types[9];
};

constexpr const char* kLive =
    "(b.status = 'confirmed' OR (b.status = 'pending' AND b.expires_at > $2))";

const PlanDef kPlans[kPlanCount] = {
    // kSlot
    {"SELECT capacity, hold_ttl, seat_labels IS NOT NULL, one_per_holder, shards, "
     "managed_by::oid FROM slotguard.slots WHERE id = $1",
     1,
     {INT8OID}},
    // kIdempotent
    {"SELECT * FROM slotguard.bookings WHERE slot_id = $1 AND idempotency_key = $2",
     2,
     {INT8OID, TEXTOID}},
    // kHolderLive
    {"SELECT 1 FROM slotguard.bookings WHERE slot_id = $1 AND holder = $2 "
     "AND status IN ('pending', 'confirmed') "
     "AND (status = 'confirmed' OR expires_at > $3) LIMIT 1",
     3,
     {INT8OID, TEXTOID, TIMESTAMPTZOID}},
    // kShardPick: one unlocked shard with room (or with holds to take back), from a random start
    {"SELECT shard, capacity, used FROM slotguard.slot_shards "
     "WHERE slot_id = $1 AND (capacity - used >= $2 OR next_expiry <= $3) "
     "AND shard <> ALL ($6) "
     "ORDER BY (shard + $4) % $5 LIMIT 1 FOR UPDATE SKIP LOCKED",
     6,
     {INT8OID, INT4OID, TIMESTAMPTZOID, INT4OID, INT4OID, INT4ARRAYOID}},
    // kFastBook: the common case in one statement — lock the first unlocked shard in [$3, $4)
    // with room, count the seats in it, insert the booking
    {"WITH pick AS (SELECT shard FROM slotguard.slot_shards "
     "  WHERE slot_id = $1 AND shard >= $3 AND shard < $4 AND capacity - used >= $2 "
     "  ORDER BY shard LIMIT 1 FOR UPDATE SKIP LOCKED), "
     "upd AS (UPDATE slotguard.slot_shards s SET used = s.used + $2, "
     "  next_expiry = CASE WHEN $7::timestamptz IS NOT NULL "
     "  AND (s.next_expiry IS NULL OR s.next_expiry > $7) THEN $7 ELSE s.next_expiry END "
     "  FROM pick WHERE s.slot_id = $1 AND s.shard = pick.shard RETURNING s.shard) "
     "INSERT INTO slotguard.bookings (slot_id, holder, seats, status, shard, expires_at, "
     "confirmed_at) SELECT $1, $5, $2, $6, upd.shard, $7, $8 FROM upd RETURNING *",
     8,
     {INT8OID, INT4OID, INT4OID, INT4OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID}},
    // kShardsRoom: a slot's room and whether it has dead holds, read without locking
    {"SELECT coalesce(sum(capacity - used), 0)::int, coalesce(bool_or(next_expiry <= $2), false) "
     "FROM slotguard.slot_shards WHERE slot_id = $1",
     2,
     {INT8OID, TIMESTAMPTZOID}},
    // kShardWait: every shard with room is locked by another buyer right now: pick the one to
    // wait for, without locking (a locking scan would keep the lock of every row that fails its
    // recheck after the wait, and wait for the next one while holding it: a deadlock between two
    // buyers who scan in different orders)
    {"SELECT shard FROM slotguard.slot_shards WHERE slot_id = $1 AND capacity - used >= $2 "
     "ORDER BY (shard + $3) % $4 LIMIT 1",
     4,
     {INT8OID, INT4OID, INT4OID, INT4OID}},
    // kSeatsFreeCount: a numbered slot's seats that are free or held by dead holds, unlocked
    {"SELECT count(*)::int FROM slotguard.seats s WHERE s.slot_id = $1 "
     "AND (s.booking_id IS NULL OR NOT EXISTS (SELECT FROM slotguard.bookings b "
     "WHERE b.id = s.booking_id AND (b.status = 'confirmed' OR "
     "(b.status = 'pending' AND b.expires_at > $2))))",
     2,
     {INT8OID, TIMESTAMPTZOID}},
    // kShardReclaim: mark a locked shard's dead holds expired; returns (seats, bookings)
    {"WITH e AS (UPDATE slotguard.bookings SET status = 'expired' WHERE id IN ("
     "  SELECT id FROM slotguard.bookings WHERE slot_id = $1 AND shard = $2 "
     "  AND status = 'pending' AND expires_at <= $3 ORDER BY expires_at LIMIT $4 "
     "  FOR UPDATE SKIP LOCKED) RETURNING seats) "
     "SELECT coalesce(sum(seats), 0)::int, count(*)::int FROM e",
     4,
     {INT8OID, INT4OID, TIMESTAMPTZOID, INT4OID}},
    // kShardMinExpiry
    {"SELECT min(expires_at) FROM slotguard.bookings "
     "WHERE slot_id = $1 AND shard = $2 AND status = 'pending'",
     2,
     {INT8OID, INT4OID}},
    // kShardUsed: used -= $3, next_expiry = $4
    {"UPDATE slotguard.slot_shards SET used = used - $3, next_expiry = $4 "
     "WHERE slot_id = $1 AND shard = $2",
     4,
     {INT8OID, INT4OID, INT4OID, TIMESTAMPTZOID}},
    // kShardGrow: capacity += $3 (moves free capacity between shards of one slot)
    {"UPDATE slotguard.slot_shards SET capacity = capacity + $3 WHERE slot_id = $1 AND shard = $2",
     3,
     {INT8OID, INT4OID, INT4OID}},
    // kShardsAll: every shard of a slot, locked in shard order (the slow path)
    {"SELECT shard, capacity, used, next_expiry <= $2 FROM slotguard.slot_shards "
     "WHERE slot_id = $1 ORDER BY shard FOR UPDATE",
     2,
     {INT8OID, TIMESTAMPTZOID}},
    // kShardLock
    {"SELECT used FROM slotguard.slot_shards WHERE slot_id = $1 AND shard = $2 FOR UPDATE",
     2,
     {INT8OID, INT4OID}},
    // kShardLockRoom: one shard locked (waiting for it if need be); its room
    {"SELECT capacity - used FROM slotguard.slot_shards WHERE slot_id = $1 AND shard = $2 "
     "FOR UPDATE",
     2,
     {INT8OID, INT4OID}},
    // kShardAddHold: used += $3; a new hold may expire before the shard's next_expiry
    {"UPDATE slotguard.slot_shards SET used = used + $3, "
     "next_expiry = CASE WHEN $4::timestamptz IS NOT NULL "
     "AND (next_expiry IS NULL OR next_expiry > $4) THEN $4 ELSE next_expiry END "
     "WHERE slot_id = $1 AND shard = $2",
     4,
     {INT8OID, INT4OID, INT4OID, TIMESTAMPTZOID}},
    // kInsertBooking
    {"INSERT INTO slotguard.bookings (slot_id, holder, seats, seat_labels, status, "
     "idempotency_key, shard, expires_at, confirmed_at) "
     "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
     "ON CONFLICT (slot_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING "
     "RETURNING *",
     9,
     {INT8OID, TEXTOID, INT4OID, TEXTARRAYOID, TEXTOID, TEXTOID, INT4OID, TIMESTAMPTZOID,
      TIMESTAMPTZOID}},
    // kSeatsCandidates: unlocked seats after ord $3 that look free, in label order
    {"SELECT s.ord FROM slotguard.seats s WHERE s.slot_id = $1 AND s.ord > $3 "
     "AND (s.booking_id IS NULL OR NOT EXISTS (SELECT FROM slotguard.bookings b "
     "WHERE b.id = s.booking_id AND (b.status = 'confirmed' OR "
     "(b.status = 'pending' AND b.expires_at > $2)))) "
     "ORDER BY s.ord LIMIT $4 FOR UPDATE OF s SKIP LOCKED",
     4,
     {INT8OID, TIMESTAMPTZOID, INT4OID, INT8OID}},
    // kSeatsCandidatesAll: the same, waiting for locked ones (the exact, slow path)
    {"SELECT s.ord FROM slotguard.seats s WHERE s.slot_id = $1 "
     "AND (s.booking_id IS NULL OR NOT EXISTS (SELECT FROM slotguard.bookings b "
     "WHERE b.id = s.booking_id AND (b.status = 'confirmed' OR "
     "(b.status = 'pending' AND b.expires_at > $2)))) "
     "ORDER BY s.ord FOR UPDATE OF s",
     2,
     {INT8OID, TIMESTAMPTZOID}},
    // kSeatsReclaim: the dead holds owning locked seats become 'expired'; returns how many
    {"WITH e AS (UPDATE slotguard.bookings b SET status = 'expired' FROM slotguard.seats s "
     "WHERE s.slot_id = $1 AND s.ord = ANY ($2) AND b.id = s.booking_id "
     "AND b.status = 'pending' AND b.expires_at <= $3 RETURNING b.id) "
     "SELECT count(DISTINCT id)::int FROM e",
     3,
     {INT8OID, INT4ARRAYOID, TIMESTAMPTZOID}},
    // kSeatsCheck: which of the locked seats are free, seen by a fresh statement
    {"SELECT s.ord, s.label FROM slotguard.seats s WHERE s.slot_id = $1 AND s.ord = ANY ($3) "
     "AND (s.booking_id IS NULL OR NOT EXISTS (SELECT FROM slotguard.bookings b "
     "WHERE b.id = s.booking_id AND (b.status = 'confirmed' OR "
     "(b.status = 'pending' AND b.expires_at > $2)))) ORDER BY s.ord",
     3,
     {INT8OID, TIMESTAMPTZOID, INT4ARRAYOID}},
    // kSeatsByLabel
    {"SELECT ord, label FROM slotguard.seats WHERE slot_id = $1 AND label = ANY ($2) "
     "ORDER BY ord FOR UPDATE",
     2,
     {INT8OID, TEXTARRAYOID}},
    // kSeatsAssign
    {"UPDATE slotguard.seats SET booking_id = $3 WHERE slot_id = $1 AND ord = ANY ($2)",
     3,
     {INT8OID, INT4ARRAYOID, INT8OID}},
    // kBookingGet
    {"SELECT slot_id, shard, holder FROM slotguard.bookings WHERE id = $1", 1, {INT8OID}},
    // kBookingRead
    {"SELECT * FROM slotguard.bookings WHERE id = $1", 1, {INT8OID}},
    // kBookingLock
    {"SELECT * FROM slotguard.bookings WHERE id = $1 FOR UPDATE", 1, {INT8OID}},
    // kConfirm
    {"UPDATE slotguard.bookings SET status = 'confirmed', confirmed_at = $2, expires_at = NULL "
     "WHERE id = $1 RETURNING *",
     2,
     {INT8OID, TIMESTAMPTZOID}},
    // kCancel: status = $2 ('cancelled' or 'expired')
    {"UPDATE slotguard.bookings SET status = $2, "
     "cancelled_at = CASE WHEN $2 = 'cancelled' THEN $3 END WHERE id = $1 RETURNING *",
     3,
     {INT8OID, TEXTOID, TIMESTAMPTZOID}},
    // kExpireShards: shards with holds to take back that nobody holds right now
    {"SELECT slot_id, shard FROM slotguard.slot_shards WHERE next_expiry <= $1 "
     "ORDER BY next_expiry LIMIT $2 FOR UPDATE SKIP LOCKED",
     2,
     {TIMESTAMPTZOID, INT8OID}},
    // kExpireSeatBookings: dead holds of numbered-seat slots; returns (slot_id, count)
    {"WITH e AS (UPDATE slotguard.bookings SET status = 'expired' WHERE id IN ("
     "  SELECT id FROM slotguard.bookings WHERE status = 'pending' AND shard IS NULL "
     "  AND expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED) "
     "  RETURNING slot_id) "
     "SELECT slot_id, count(*)::int FROM e GROUP BY slot_id",
     2,
     {TIMESTAMPTZOID, INT4OID}},
    // kAvailability
    {"SELECT s.capacity, "
     "coalesce(sum(b.seats) FILTER (WHERE b.status = 'confirmed'), 0)::int, "
     "coalesce(sum(b.seats) FILTER (WHERE b.status = 'pending' AND b.expires_at > $2), 0)::int "
     "FROM slotguard.slots s LEFT JOIN slotguard.bookings b "
     "ON b.slot_id = s.id AND b.status IN ('pending', 'confirmed') "
     "WHERE s.id = $1 GROUP BY s.capacity",
     2,
     {INT8OID, TIMESTAMPTZOID}},
    // kNextExpiry
    {"SELECT min(expires_at) FROM slotguard.bookings WHERE status = 'pending'", 0, {}},
    // kInsertSlot
    {"INSERT INTO slotguard.slots (capacity, starts_at, ends_at, resource, hold_ttl, "
     "seat_labels, one_per_holder, shards, managed_by) "
     "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::regrole) RETURNING id",
     9,
     {INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, INTERVALOID, TEXTARRAYOID, BOOLOID, INT4OID,
      OIDOID}},
    // kInsertShards: capacity $2 split over $3 shards
    {"INSERT INTO slotguard.slot_shards (slot_id, shard, capacity) "
     "SELECT $1, g, $2 / $3 + CASE WHEN g < $2 % $3 THEN 1 ELSE 0 END "
     "FROM generate_series(0, $3 - 1) g",
     3,
     {INT8OID, INT4OID, INT4OID}},
    // kInsertSeats
    {"INSERT INTO slotguard.seats (slot_id, ord, label) "
     "SELECT $1, u.o, u.l FROM unnest($2::text[]) WITH ORDINALITY AS u(l, o)",
     2,
     {INT8OID, TEXTARRAYOID}},
};

SPIPlanPtr plans[kPlanCount];

// run executes a prepared statement (preparing and keeping it on first use).
int run(Plan id, const Datum* values, const char* nulls, long limit = 0,
        Snapshot snapshot = InvalidSnapshot) {
  if (plans[id] == nullptr) {
    const PlanDef& def = kPlans[id];
    SPIPlanPtr p = SPI_prepare(def.sql, def.nargs, const_cast<Oid*>(def.types));
    if (p == nullptr)
      elog(ERROR, "slotguard: SPI_prepare failed (%s): %s", SPI_result_code_string(SPI_result),
           def.sql);
    SPI_keepplan(p);
    plans[id] = p;
  }
  const int rc = snapshot != InvalidSnapshot
                     ? SPI_execute_snapshot(plans[id], const_cast<Datum*>(values), nulls, snapshot,
                                            InvalidSnapshot, true, false, limit)
                     : SPI_execute_plan(plans[id], const_cast<Datum*>(values), nulls, false, limit);
  if (rc < 0) elog(ERROR, "slotguard: SPI_execute_plan failed: %s", SPI_result_code_string(rc));
  return rc;
}

// col reads one value of the last result, checking that it has the type the code assumes: the
// tables are slotguard's, but a superuser may alter them, and a misread Datum must be an error,
// never a crash.
Datum col(uint64 row, int column, Oid type, bool* isnull) {
  const Oid actual = SPI_gettypeid(SPI_tuptable->tupdesc, column);
  if (actual != type)
    ereport(ERROR,
            (errcode(ERRCODE_DATATYPE_MISMATCH),
             errmsg("slotguard: column %d of a result has type %s, expected %s", column,
                    OidIsValid(actual) ? format_type_be(actual) : "(none)", format_type_be(type)),
             errhint("A table of schema slotguard was altered; reinstall the extension.")));
  return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, column, isnull);
}

int32 col_int(uint64 row, int column) {
  bool isnull;
  Datum d = col(row, column, INT4OID, &isnull);
  return isnull ? 0 : DatumGetInt32(d);
}

int64 col_int8(uint64 row, int column) {
  bool isnull;
  Datum d = col(row, column, INT8OID, &isnull);
  return isnull ? 0 : DatumGetInt64(d);
}

bool col_bool(uint64 row, int column) {
  bool isnull;
  Datum d = col(row, column, BOOLOID, &isnull);
  return !isnull && DatumGetBool(d);
}

// col_text returns a text value as a palloc'd C string (NULL for SQL NULL).
char* col_text(uint64 row, int column) {
  bool isnull;
  Datum d = col(row, column, TEXTOID, &isnull);
  return isnull ? nullptr : TextDatumGetCString(d);
}

// returned_row copies the first row of the last result out of SPI as the function's result.
Datum returned_row() {
  return PointerGetDatum(SPI_returntuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc));
}

Datum int_array(const int32* items, int n) {
  Datum* elems = static_cast<Datum*>(palloc(sizeof(Datum) * (n > 0 ? n : 1)));
  for (int i = 0; i < n; i++) elems[i] = Int32GetDatum(items[i]);
  return PointerGetDatum(construct_array(elems, n, INT4OID, 4, true, TYPALIGN_INT));
}

void spi_connect() {
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "slotguard: SPI_connect failed");
}

// in_subxact runs body() in a subtransaction around an attempt that may leave row locks behind:
// rolling it back releases them, so that what follows can wait for a lock without holding one
// another buyer waits for. The subtransaction is kept (released) when body returns true and
// rolled back when it returns false. A PostgreSQL ERROR inside rolls it back and is re-raised
// unchanged, as a PL/pgSQL exception block does, so the caller's transaction (or its own
// subtransaction) is left exactly as an error of any other statement leaves it. body is
// PostgreSQL-style code: it must not throw a C++ exception (it would skip PG_CATCH), hence
// noexcept. Memory it allocates lives in the caller's context, not the subtransaction's.
template <typename F>
bool in_subxact(F&& body) {
  static_assert(noexcept(body()), "in_subxact: the body must be noexcept");
  const MemoryContext context = CurrentMemoryContext;
  const ResourceOwner owner = CurrentResourceOwner;
  BeginInternalSubTransaction(nullptr);
  MemoryContextSwitchTo(context);
  volatile bool keep = false;
  PG_TRY();
  { keep = body(); }
  PG_CATCH();
  {
    MemoryContextSwitchTo(context);
    ErrorData* edata = CopyErrorData();
    FlushErrorState();
    RollbackAndReleaseCurrentSubTransaction();
    MemoryContextSwitchTo(context);
    CurrentResourceOwner = owner;
    ReThrowError(edata);
  }
  PG_END_TRY();
  if (keep)
    ReleaseCurrentSubTransaction();
  else
    RollbackAndReleaseCurrentSubTransaction();
  MemoryContextSwitchTo(context);
  CurrentResourceOwner = owner;
  return keep;
}

int64 int8_arg(FunctionCallInfo fcinfo, int n, const char* what) {
  if (PG_ARGISNULL(n))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, psprintf("%s must not be NULL", what));
  return PG_GETARG_INT64(n);
}

bool interval_positive(Datum interval) {
  Interval zero{};
  return DatumGetBool(DirectFunctionCall2(interval_gt, interval, IntervalPGetDatum(&zero)));
}

TimestampTz plus(TimestampTz t, Datum interval) {
  return DatumGetTimestampTz(
      DirectFunctionCall2(timestamptz_pl_interval, TimestampTzGetDatum(t), interval));
}

// ---- caller-sized inputs ---------------------------------------------------------------------
//
// Label arrays, holders and idempotency keys come from callers in any size. Everything done with
// them is O(n log n) (sort, then merge or binary search), checks for interrupts as it goes (so
// statement_timeout and cancel work), and error texts name at most kNamed of them.

// Bounds (README "Slot-seat reservation"): longer values are 22023.
constexpr int kMaxLabelBytes = 256;
constexpr int kMaxHolderBytes = 1024;  // also idempotency keys
constexpr int kNamed = 5;              // labels named in an error text; the rest are counted

// Label is one seat label of a caller's array, pointing into the array.
struct Label {
  const char* data;
  int32 len;
  int32 index;  // its position in the caller's array (or in a result)
};

int label_cmp(const Label* a, const Label* b) {
  const int c = memcmp(a->data, b->data, a->len < b->len ? a->len : b->len);
  if (c != 0) return c;
  return (a->len > b->len) - (a->len < b->len);
}

}  // namespace

// sort_labels: an interruptible sort of Label by bytes (PostgreSQL's sort template: quicksort that
// calls CHECK_FOR_INTERRUPTS as it goes). Byte order equals the text equality of seats.label,
// whose collation is deterministic (the database default).
#define ST_SORT sort_labels
#define ST_ELEMENT_TYPE Label
#define ST_COMPARE(a, b) label_cmp(a, b)
#define ST_CHECK_FOR_INTERRUPTS
#define ST_SCOPE static
#define ST_DEFINE
#define Min(x, y) ((x) < (y) ? (x) : (y))  // pg.hpp undefines PostgreSQL's Min
extern "C" {
#include "lib/sort_template.h"
}
#undef Min

namespace {

// OrdLabel is a numbered seat (its ord) with its label, as a booking's result lists them.
struct OrdLabel {
  int32 ord;
  Datum label;
};

int ord_cmp(const OrdLabel* a, const OrdLabel* b) {
  return (a->ord > b->ord) - (a->ord < b->ord);
}

}  // namespace

#define ST_SORT sort_ord_labels
#define ST_ELEMENT_TYPE OrdLabel
#define ST_COMPARE(a, b) ord_cmp(a, b)
#define ST_CHECK_FOR_INTERRUPTS
#define ST_SCOPE static
#define ST_DEFINE
#define Min(x, y) ((x) < (y) ? (x) : (y))  // pg.hpp undefines PostgreSQL's Min
extern "C" {
#include "lib/sort_template.h"
}
#undef Min

namespace {

// check_text_arg returns a text argument as a C string, 22023 when it is longer than max bytes.
char* check_text_arg(FunctionCallInfo fcinfo, int n, const char* what, int max) {
  text* t = PG_GETARG_TEXT_PP(n);
  const int len = VARSIZE_ANY_EXHDR(t);
  if (len > max)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, psprintf("%s is too long", what),
                psprintf("It has %d bytes; at most %d are allowed.", len, max));
  return text_to_cstring(t);
}

// labels_of deconstructs a caller's text[] of seat labels: one dimension, no NULL, no empty label,
// none longer than kMaxLabelBytes, no label twice (22023 otherwise). Returns the labels in the
// caller's order; *n receives how many.
Label* labels_of(ArrayType* a, const char* what, int* n) {
  if (ARR_NDIM(a) > 1)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                psprintf("%s must be a one-dimensional array", what));
  if (ARR_ELEMTYPE(a) != TEXTOID)
    throw Error(ERRCODE_DATATYPE_MISMATCH, psprintf("%s must be a text array", what));
  Datum* items;
  bool* nulls;
  deconstruct_array(a, TEXTOID, -1, false, TYPALIGN_INT, &items, &nulls, n);
  Label* labels = static_cast<Label*>(palloc(sizeof(Label) * (*n + 1)));
  for (int i = 0; i < *n; i++) {
    if ((i & 1023) == 0) CHECK_FOR_INTERRUPTS();
    if (nulls[i])
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE, psprintf("%s must not contain NULL", what));
    const text* t = reinterpret_cast<const text*>(DatumGetPointer(items[i]));
    labels[i].data = VARDATA_ANY(t);
    labels[i].len = VARSIZE_ANY_EXHDR(t);
    labels[i].index = i;
    if (labels[i].len == 0)
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                  psprintf("%s must not contain empty labels", what));
    if (labels[i].len > kMaxLabelBytes)
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                  psprintf("%s contains a label that is too long", what),
                  psprintf("Label %d has %d bytes; at most %d are allowed.", i + 1, labels[i].len,
                           kMaxLabelBytes));
  }
  Label* sorted = static_cast<Label*>(palloc(sizeof(Label) * (*n + 1)));
  memcpy(sorted, labels, sizeof(Label) * *n);
  sort_labels(sorted, *n);
  for (int i = 1; i < *n; i++) {
    if ((i & 1023) == 0) CHECK_FOR_INTERRUPTS();
    if (label_cmp(&sorted[i - 1], &sorted[i]) == 0)
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                  psprintf("seat label \"%s\" appears twice in %s",
                           pnstrdup(sorted[i].data, sorted[i].len), what));
  }
  pfree(sorted);
  return labels;
}

// LabelList collects labels for an error text: the first kNamed are named, the rest counted
// ("A1, A2, A3, A4, A5 and 7 more").
struct LabelList {
  StringInfoData text;
  int count;
};

void list_init(LabelList* l) {
  initStringInfo(&l->text);
  l->count = 0;
}

void list_add(LabelList* l, const char* data, int len) {
  if (l->count++ < kNamed) {
    if (l->text.len > 0) appendStringInfoString(&l->text, ", ");
    appendBinaryStringInfo(&l->text, data, len);
  }
}

const char* list_text(LabelList* l) {
  if (l->count > kNamed) appendStringInfo(&l->text, " and %d more", l->count - kNamed);
  return l->text.data;
}

// ---- the slot a request is about --------------------------------------------------------------

struct Slot {
  int64 id;
  int32 capacity;
  Datum hold_ttl;
  bool numbered;
  bool one_per_holder;
  int32 shards;
  Oid managed_by;  // InvalidOid: any role allowed to EXECUTE the functions may act on the slot
};

// Slots never change once created, so each backend remembers the ones it has used. The cache is
// dropped whenever slotguard.slots' relcache entry is invalidated (TRUNCATE, DROP EXTENSION, ...).
struct CachedSlot {
  int64 id;
  Slot slot;
  Interval ttl;
};
HTAB* slot_cache = nullptr;
Oid slot_cache_relid = InvalidOid;

void forget_slots(Datum, Oid relid) {
  if (slot_cache != nullptr && (relid == InvalidOid || relid == slot_cache_relid)) {
    hash_destroy(slot_cache);
    slot_cache = nullptr;
  }
}

CachedSlot* cached_slot(int64 id, bool create) {
  static bool registered = false;
  if (!registered) {
    CacheRegisterRelcacheCallback(forget_slots, 0);
    registered = true;
  }
  const Oid relid = get_relname_relid("slots", get_namespace_oid("slotguard", false));
  if (slot_cache != nullptr && relid != slot_cache_relid) forget_slots(0, InvalidOid);
  if (slot_cache == nullptr) {
    if (!create) return nullptr;
    HASHCTL info;
    info.keysize = sizeof(int64);
    info.entrysize = sizeof(CachedSlot);
    info.hcxt = TopMemoryContext;
    slot_cache = hash_create("slotguard slots", 64, &info, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
    slot_cache_relid = relid;
  }
  if (!create) return static_cast<CachedSlot*>(hash_search(slot_cache, &id, HASH_FIND, nullptr));
  if (hash_get_num_entries(slot_cache) > 100000) {
    forget_slots(0, InvalidOid);
    return cached_slot(id, true);
  }
  return static_cast<CachedSlot*>(hash_search(slot_cache, &id, HASH_ENTER, nullptr));
}

Slot load_slot(int64 id) {
  if (CachedSlot* c = cached_slot(id, false)) {
    Slot s = c->slot;
    s.hold_ttl = IntervalPGetDatum(&c->ttl);
    return s;
  }
  Datum v[1] = {Int64GetDatum(id)};
  run(kSlot, v, nullptr);
  if (SPI_processed == 0)
    throw Error(sg::errcodes::kNotFound,
                psprintf("slot %lld does not exist", static_cast<long long>(id)));
  Slot s;
  s.id = id;
  s.capacity = col_int(0, 1);
  bool isnull;
  const Datum ttl = col(0, 2, INTERVALOID, &isnull);
  if (isnull) elog(ERROR, "slotguard: slot %lld has no hold_ttl", static_cast<long long>(id));
  s.hold_ttl = datumCopy(ttl, false, sizeof(Interval));
  s.numbered = col_bool(0, 3);
  s.one_per_holder = col_bool(0, 4);
  s.shards = col_int(0, 5);
  const Datum manager = col(0, 6, OIDOID, &isnull);
  s.managed_by = isnull ? InvalidOid : DatumGetObjectId(manager);
  CachedSlot* c = cached_slot(id, true);
  c->slot = s;
  c->ttl = *DatumGetIntervalP(s.hold_ttl);
  return s;
}

// current_free counts the free seats of a slot as availability() does.
int32 current_free(int64 slot) {
  Datum v[2] = {Int64GetDatum(slot), TimestampTzGetDatum(GetCurrentTimestamp())};
  run(kAvailability, v, nullptr);
  if (SPI_processed == 0) return 0;
  return col_int(0, 1) - col_int(0, 2) - col_int(0, 3);
}

// free_detail: "<what>; N seat(s) free." for SG003's DETAIL.
char* free_detail(const char* what, int64 slot) {
  const int32 free = current_free(slot);
  return psprintf("%s; %d seat%s free.", what, free, free == 1 ? " is" : "s are");
}

[[noreturn]] void sold_out(const Slot& slot, int32 wanted, int32 free, const char* what) {
  sg::stats::count(sg::stats::Scope::kSlot, slot.id, sg::stats::kSoldOut);
  throw Error(sg::errcodes::kSoldOut,
              psprintf("slot %lld is sold out%s", static_cast<long long>(slot.id), what),
              psprintf("%d seat%s requested, %d free.", wanted, wanted == 1 ? "" : "s", free));
}

// A reservation request, validated.
struct Request {
  Slot slot;
  const char* holder;
  int32 seats;
  Datum labels;   // text[] for reserve_seats, else 0
  Label* wanted;  // reserve_seats: the labels, in the caller's order
  const char* idempotency_key;
  bool confirm;
  TimestampTz now;
  TimestampTz expires_at;  // 0 when confirm
};

// Column numbers of slotguard.bookings in a SELECT * / RETURNING *.
constexpr int kColId = 1, kColSlot = 2, kColHolder = 3, kColSeats = 4, kColStatus = 6,
              kColShard = 8, kColExpires = 10;

// check_key_holder: the booking in SPI_tuptable has r's idempotency key. It is r's own only when
// the holder is the same: a key reused by another holder is 22023, and the other holder's
// booking is never returned (README "Privileges").
// (It runs inside in_subxact bodies, hence ereport, not throw.)
void check_key_holder(const Request& r) {
  const char* holder = col_text(0, kColHolder);
  if (holder == nullptr || strcmp(holder, r.holder) != 0)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("idempotency key \"%s\" is already used by another holder of slot %lld",
                           r.idempotency_key, static_cast<long long>(r.slot.id)),
                    errhint("Use a key of your own for each request.")));
}

// find_own finds r's booking by its idempotency key (in SPI_tuptable when true), read with
// `snapshot` (InvalidSnapshot: the statement's).
bool find_own(const Request& r, Snapshot snapshot) {
  if (r.idempotency_key == nullptr) return false;
  Datum k[2] = {Int64GetDatum(r.slot.id), CStringGetTextDatum(r.idempotency_key)};
  run(kIdempotent, k, nullptr, 0, snapshot);
  if (SPI_processed == 0) return false;
  check_key_holder(r);
  return true;
}

// A request is retried with its idempotency key while the first attempt still runs: the retry
// waits on the first one's locks (a shard, a seat, or the holder lock of a one-per-holder slot)
// and then finds the slot full — or the holder booked — with its own booking. twin() looks for
// that booking in a fresh snapshot; the booking is then in SPI_tuptable. Under REPEATABLE READ
// and SERIALIZABLE a booking the transaction's snapshot cannot see is 40001, as PostgreSQL's
// INSERT ... ON CONFLICT answers a conflict with a row committed after the snapshot: the client
// retries, and the new transaction gets the booking at once.
bool twin(const Request& r) {
  if (!find_own(r, GetLatestSnapshot())) return false;
  if (IsolationUsesXactSnapshot()) {
    const int64 id = col_int8(0, kColId);
    Datum k[2] = {Int64GetDatum(r.slot.id), CStringGetTextDatum(r.idempotency_key)};
    run(kIdempotent, k, nullptr);
    if (SPI_processed == 0 || col_int8(0, kColId) != id)
      ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
                      errmsg("could not serialize access due to concurrent update")));
  }
  return true;
}

// insert_booking inserts the booking; false when a concurrent request with the same idempotency
// key won (its booking is then in SPI_tuptable via kIdempotent).
bool insert_booking(const Request& r, int32 shard, Datum seat_labels) {
  Datum v[9] = {Int64GetDatum(r.slot.id),
                CStringGetTextDatum(r.holder),
                Int32GetDatum(r.seats),
                seat_labels,
                CStringGetTextDatum(r.confirm ? "confirmed" : "pending"),
                r.idempotency_key ? CStringGetTextDatum(r.idempotency_key) : (Datum)0,
                Int32GetDatum(shard),
                TimestampTzGetDatum(r.expires_at),
                TimestampTzGetDatum(r.now)};
  char nulls[10] = "         ";
  if (seat_labels == 0) nulls[3] = 'n';
  if (!r.idempotency_key) nulls[5] = 'n';
  if (shard < 0) nulls[6] = 'n';
  if (r.confirm)
    nulls[7] = 'n';
  else
    nulls[8] = 'n';
  run(kInsertBooking, v, nulls);
  if (SPI_processed > 0) return true;
  if (!find_own(r, InvalidSnapshot))
    elog(ERROR, "slotguard: booking with idempotency key \"%s\" vanished", r.idempotency_key);
  return false;
}

// reclaim takes back a locked shard's dead holds; returns the seats freed. Updates used and
// next_expiry. `limit` caps the bookings touched; *count receives how many were, and *settled
// (if given) whether the shard has no dead hold left that it knows of.
int32 reclaim(int64 slot, int32 shard, TimestampTz now, int32 limit, int32* count,
              bool* settled = nullptr) {
  Datum v[4] = {Int64GetDatum(slot), Int32GetDatum(shard), TimestampTzGetDatum(now),
                Int32GetDatum(limit)};
  run(kShardReclaim, v, nullptr);
  const int32 seats = col_int(0, 1);
  *count = col_int(0, 2);
  Datum m[2] = {Int64GetDatum(slot), Int32GetDatum(shard)};
  run(kShardMinExpiry, m, nullptr);
  bool isnull;
  Datum next = col(0, 1, TIMESTAMPTZOID, &isnull);
  if (settled) *settled = isnull || DatumGetTimestampTz(next) > now;
  Datum u[4] = {Int64GetDatum(slot), Int32GetDatum(shard), Int32GetDatum(seats), next};
  const char nulls[5] = {' ', ' ', ' ', isnull ? 'n' : ' ', '\0'};
  run(kShardUsed, u, nulls);
  if (*count > 0) sg::stats::count(sg::stats::Scope::kSlot, slot, sg::stats::kExpirations, *count);
  return seats;
}

// book_in_shard inserts the booking counted by a shard we hold locked and returns it.
Datum book_in_shard(const Request& r, int32 shard) {
  if (!insert_booking(r, shard, 0)) return returned_row();
  Datum result = returned_row();
  Datum v[4] = {Int64GetDatum(r.slot.id), Int32GetDatum(shard), Int32GetDatum(r.seats),
                TimestampTzGetDatum(r.expires_at)};
  const char nulls[5] = {' ', ' ', ' ', r.confirm ? 'n' : ' ', '\0'};
  run(kShardAddHold, v, nulls);
  return result;
}

Datum reserve_capacity(const Request& r) {
  const Slot& slot = r.slot;
  if (r.seats > slot.capacity) sold_out(slot, r.seats, current_free(slot.id), "");
  const int32 start =
      slot.shards > 0 ? static_cast<int32>(pg_prng_uint32(&pg_global_prng_state) % slot.shards) : 0;
  // Both fast paths run in one subtransaction. They never wait, but they may lock shards they
  // then cannot use: a row that had room in our snapshot is locked in its latest version, which
  // may be full, and a locking scan keeps such a lock even though it skips the row. Rolling the
  // subtransaction back gives those locks back before anything below waits, so a buyer never
  // waits while holding a shard another waiting buyer needs.
  // (A slot without shards has capacity 0: seats > capacity answered above.)
  Datum booked = 0;
  in_subxact([&]() noexcept {
    // Fastest path, one statement: an unlocked shard with room, from `start` on, then before it.
    // (With an idempotency key the insert must be able to lose to a concurrent twin, below.)
    if (r.idempotency_key == nullptr) {
      for (int pass = 0; pass < 2 && booked == 0; pass++) {
        const int32 lo = pass == 0 ? start : 0, hi = pass == 0 ? slot.shards : start;
        if (lo >= hi) continue;
        Datum v[8] = {Int64GetDatum(slot.id),
                      Int32GetDatum(r.seats),
                      Int32GetDatum(lo),
                      Int32GetDatum(hi),
                      CStringGetTextDatum(r.holder),
                      CStringGetTextDatum(r.confirm ? "confirmed" : "pending"),
                      TimestampTzGetDatum(r.expires_at),
                      TimestampTzGetDatum(r.now)};
        const char nulls[9] = {
            ' ', ' ', ' ', ' ', ' ', ' ', r.confirm ? 'n' : ' ', r.confirm ? ' ' : 'n', '\0'};
        run(kFastBook, v, nulls);
        if (SPI_processed > 0) booked = returned_row();
      }
    }
    // Fast path: one unlocked shard with room, or with dead holds to take back.
    {
      int32 tried[64];
      int ntried = 0;
      while (booked == 0 && ntried < 64) {
        Datum v[6] = {Int64GetDatum(slot.id),     Int32GetDatum(r.seats),
                      TimestampTzGetDatum(r.now), Int32GetDatum(start),
                      Int32GetDatum(slot.shards), int_array(tried, ntried)};
        run(kShardPick, v, nullptr);
        if (SPI_processed == 0) break;
        const int32 shard = col_int(0, 1);
        const int32 capacity = col_int(0, 2);
        int32 used = col_int(0, 3);
        if (capacity - used < r.seats) {
          int32 n;
          used -= reclaim(slot.id, shard, r.now, PG_INT32_MAX, &n);
        }
        if (capacity - used >= r.seats) {
          booked = book_in_shard(r, shard);
          break;
        }
        tried[ntried++] = shard;
      }
    }
    return booked != 0;
  });
  if (booked != 0) return booked;
  // Sold out as far as committed bookings go (and nothing to take back): say so without locking
  // anything, so that buyers of a full slot do not queue behind each other.
  {
    Datum v[2] = {Int64GetDatum(slot.id), TimestampTzGetDatum(r.now)};
    run(kShardsRoom, v, nullptr, 0, GetLatestSnapshot());
    const int32 room = col_int(0, 1);
    const bool dead = col_bool(0, 2);
    if (room < r.seats && !dead) {
      if (twin(r)) return returned_row();
      sold_out(slot, r.seats, room, "");
    }
    // Room enough, but every shard with room is locked by a buyer in flight (more buyers than
    // shards): queue for one shard — never for all of them, which would serialize the slot. The
    // wait holds no other lock of ours, and its lock is given back (subtransaction) when the
    // shard turns out to be full once we have it, so waiters never wait for each other.
    if (room >= r.seats) {
      Datum w[4] = {Int64GetDatum(slot.id), Int32GetDatum(r.seats), Int32GetDatum(start),
                    Int32GetDatum(slot.shards)};
      run(kShardWait, w, nullptr, 0, GetLatestSnapshot());
      if (SPI_processed > 0) {
        const int32 shard = col_int(0, 1);
        in_subxact([&]() noexcept {
          Datum l[2] = {Int64GetDatum(slot.id), Int32GetDatum(shard)};
          run(kShardLockRoom, l, nullptr);
          if (SPI_processed > 0 && col_int(0, 1) >= r.seats) booked = book_in_shard(r, shard);
          return booked != 0;
        });
        if (booked != 0) return booked;
      }
    }
  }
  // Slow path: lock every shard in order, take back dead holds, and gather free capacity into
  // the shard with the most room — or answer sold out with the exact count.
  Datum v[2] = {Int64GetDatum(slot.id), TimestampTzGetDatum(r.now)};
  run(kShardsAll, v, nullptr);
  const int n = static_cast<int>(SPI_processed);
  int32* shard = static_cast<int32*>(palloc(sizeof(int32) * (n + 1)));
  int32* room = static_cast<int32*>(palloc(sizeof(int32) * (n + 1)));
  bool* expired = static_cast<bool*>(palloc(sizeof(bool) * (n + 1)));
  for (int i = 0; i < n; i++) {
    shard[i] = col_int(i, 1);
    room[i] = col_int(i, 2) - col_int(i, 3);
    expired[i] = col_bool(i, 4);
  }
  int32 total = 0;
  int best = -1;
  for (int i = 0; i < n; i++) {
    if (expired[i]) {
      int32 count;
      room[i] += reclaim(slot.id, shard[i], r.now, PG_INT32_MAX, &count);
    }
    total += room[i];
    if (best < 0 || room[i] > room[best]) best = i;
  }
  if (total < r.seats) {
    if (twin(r)) return returned_row();
    sold_out(slot, r.seats, total, "");
  }
  int32 need = r.seats - room[best];
  for (int i = 0; i < n && need > 0; i++) {
    if (i == best || room[i] <= 0) continue;
    const int32 give = room[i] < need ? room[i] : need;
    Datum a[3] = {Int64GetDatum(slot.id), Int32GetDatum(shard[i]), Int32GetDatum(-give)};
    run(kShardGrow, a, nullptr);
    Datum b[3] = {Int64GetDatum(slot.id), Int32GetDatum(shard[best]), Int32GetDatum(give)};
    run(kShardGrow, b, nullptr);
    need -= give;
  }
  return book_in_shard(r, shard[best]);
}

// Numbered seats: take `wanted` of the seats in ords[0..n) once they are known free.
Datum book_seats(const Request& r, const int32* ords, Datum labels, int n) {
  if (!insert_booking(r, -1, labels)) return returned_row();
  Datum result = returned_row();
  bool isnull;
  const int64 booking =
      DatumGetInt64(GetAttributeByName(DatumGetHeapTupleHeader(result), "id", &isnull));
  Datum v[3] = {Int64GetDatum(r.slot.id), int_array(ords, n), Int64GetDatum(booking)};
  run(kSeatsAssign, v, nullptr);
  return result;
}

// free_among: of the locked seats ords[0..n), which are free (after taking back dead holds)?
// Writes them, in label order, to out_ords / out_labels; returns how many.
int free_among(const Request& r, const int32* ords, int n, int32* out_ords, Datum* out_labels) {
  Datum arr = int_array(ords, n);
  Datum v[3] = {Int64GetDatum(r.slot.id), arr, TimestampTzGetDatum(r.now)};
  run(kSeatsReclaim, v, nullptr);
  const int32 reclaimed = col_int(0, 1);
  if (reclaimed > 0)
    sg::stats::count(sg::stats::Scope::kSlot, r.slot.id, sg::stats::kExpirations, reclaimed);
  Datum c[3] = {Int64GetDatum(r.slot.id), TimestampTzGetDatum(r.now), arr};
  run(kSeatsCheck, c, nullptr);
  const int found = static_cast<int>(SPI_processed);
  for (int i = 0; i < found; i++) {
    bool isnull;
    out_ords[i] = col_int(i, 1);
    out_labels[i] = datumCopy(col(i, 2, TEXTOID, &isnull), false, -1);
  }
  return found;
}

Datum text_array(const Datum* items, int n) {
  return PointerGetDatum(
      construct_array(const_cast<Datum*>(items), n, TEXTOID, -1, false, TYPALIGN_INT));
}

Datum reserve_numbered(const Request& r) {
  const Slot& slot = r.slot;
  if (r.seats > slot.capacity) sold_out(slot, r.seats, current_free(slot.id), "");
  const int cap = slot.capacity + 1;
  int32* held = static_cast<int32*>(palloc(sizeof(int32) * cap));
  Datum* held_labels = static_cast<Datum*>(palloc(sizeof(Datum) * cap));
  int nheld = 0;
  int32* cand = static_cast<int32*>(palloc(sizeof(int32) * cap));
  // First the seats nobody holds locked (SKIP LOCKED), in a subtransaction: if they are not
  // enough, their locks are given back before waiting for the others, so two buyers never hold
  // some seats each while waiting for the other's. Each batch starts after the last seat of the
  // one before, so every seat is looked at once (seats skipped as locked are left to the exact
  // path below).
  in_subxact([&]() noexcept {
    int32 last = PG_INT32_MIN;
    while (nheld < r.seats) {
      CHECK_FOR_INTERRUPTS();
      Datum v[4] = {Int64GetDatum(slot.id), TimestampTzGetDatum(r.now), Int32GetDatum(last),
                    Int64GetDatum(r.seats - nheld)};
      run(kSeatsCandidates, v, nullptr);
      const int n = static_cast<int>(SPI_processed);
      if (n == 0) break;
      for (int i = 0; i < n; i++) cand[i] = col_int(i, 1);
      last = cand[n - 1];
      nheld += free_among(r, cand, n, held + nheld, held_labels + nheld);
    }
    return nheld >= r.seats;
  });
  if (nheld < r.seats) {
    nheld = 0;
    // Not enough free seats even counting dead holds: sold out, without locking anything.
    Datum c[2] = {Int64GetDatum(slot.id), TimestampTzGetDatum(r.now)};
    run(kSeatsFreeCount, c, nullptr, 0, GetLatestSnapshot());
    const int32 free_now = col_int(0, 1);
    if (free_now < r.seats) {
      if (twin(r)) return returned_row();
      sold_out(slot, r.seats, free_now, "");
    }
    // The exact path: wait for every seat that looks free, in label order.
    Datum v[2] = {Int64GetDatum(slot.id), TimestampTzGetDatum(r.now)};
    run(kSeatsCandidatesAll, v, nullptr);
    const int n = static_cast<int>(SPI_processed);
    for (int i = 0; i < n && i < cap; i++) cand[i] = col_int(i, 1);
    if (n > 0) nheld = free_among(r, cand, n < cap ? n : cap, held, held_labels);
  }
  if (nheld < r.seats) {
    if (twin(r)) return returned_row();
    sold_out(slot, r.seats, nheld, "");
  }
  // The exact path may have locked more free seats than needed: keep the first in label order.
  OrdLabel* seats = static_cast<OrdLabel*>(palloc(sizeof(OrdLabel) * nheld));
  for (int i = 0; i < nheld; i++) seats[i] = OrdLabel{held[i], held_labels[i]};
  sort_ord_labels(seats, nheld);
  for (int i = 0; i < r.seats; i++) {
    held[i] = seats[i].ord;
    held_labels[i] = seats[i].label;
  }
  return book_seats(r, held, text_array(held_labels, r.seats), r.seats);
}

Datum reserve_labels(const Request& r) {
  const Slot& slot = r.slot;
  const int n = r.seats;  // the labels, checked by labels_of: none twice
  Datum v[2] = {Int64GetDatum(slot.id), r.labels};
  run(kSeatsByLabel, v, nullptr);
  const int found = static_cast<int>(SPI_processed);
  int32* ords = static_cast<int32*>(palloc(sizeof(int32) * (found + 1)));
  Label* labels = static_cast<Label*>(palloc(sizeof(Label) * (found + 1)));  // in ord order
  for (int i = 0; i < found; i++) {
    if ((i & 1023) == 0) CHECK_FOR_INTERRUPTS();
    ords[i] = col_int(i, 1);
    const char* label = col_text(i, 2);
    labels[i] = Label{label, static_cast<int32>(label ? strlen(label) : 0), i};
  }
  if (found < n) {
    // Name the unknown ones: each wanted label looked up among the known ones, sorted.
    Label* known = static_cast<Label*>(palloc(sizeof(Label) * (found + 1)));
    memcpy(known, labels, sizeof(Label) * found);
    sort_labels(known, found);
    LabelList unknown;
    list_init(&unknown);
    for (int i = 0; i < n; i++) {
      if ((i & 1023) == 0) CHECK_FOR_INTERRUPTS();
      const Label& want = r.wanted[i];
      int lo = 0, hi = found;
      while (lo < hi) {
        const int mid = lo + (hi - lo) / 2;
        if (label_cmp(&known[mid], &want) < 0)
          lo = mid + 1;
        else
          hi = mid;
      }
      if (lo == found || label_cmp(&known[lo], &want) != 0) list_add(&unknown, want.data, want.len);
    }
    throw Error(
        ERRCODE_INVALID_PARAMETER_VALUE,
        psprintf("slot %lld has no seat %s", static_cast<long long>(slot.id), list_text(&unknown)));
  }
  int32* free_ords = static_cast<int32*>(palloc(sizeof(int32) * (n + 1)));
  Datum* free_labels = static_cast<Datum*>(palloc(sizeof(Datum) * (n + 1)));
  const int nfree = free_among(r, ords, n, free_ords, free_labels);
  if (nfree < n && twin(r)) return returned_row();
  if (nfree < n) {
    // The taken ones: ords and free_ords are both in ord order.
    LabelList taken;
    list_init(&taken);
    for (int i = 0, j = 0; i < n; i++) {
      if ((i & 1023) == 0) CHECK_FOR_INTERRUPTS();
      while (j < nfree && free_ords[j] < ords[i]) j++;
      if (j < nfree && free_ords[j] == ords[i]) continue;
      list_add(&taken, labels[i].data, labels[i].len);
    }
    sold_out(slot, n, nfree,
             psprintf(": seat%s %s %s taken", n - nfree == 1 ? "" : "s", list_text(&taken),
                      n - nfree == 1 ? "is" : "are"));
  }
  return book_seats(r, free_ords, text_array(free_labels, n), n);
}

// ---- who may act on a slot (README "Privileges") -----------------------------------------------
//
// A slot created with managed_by admits only roles that have the privileges of that role (as
// has_privs_of_role() decides: members that inherit it, and superusers); without it, any role
// allowed to EXECUTE the functions may act on it. To know its caller, a function that acts on a
// slot or a booking is SECURITY INVOKER (with a pinned search_path): it notes the caller
// (GetUserId()) and only then switches to the function's owner itself, which SECURITY DEFINER
// would have done before the body ran, hiding the caller. The switch is undone when the function
// returns, and by the (sub)transaction abort of an error.

// become_owner switches to the owner of the running function (the extension's owner) and
// returns the role that called it.
Oid become_owner(FunctionCallInfo fcinfo, sg::util::OwnerScope* scope) {
  const Oid caller = GetUserId();
  const Oid fn = fcinfo->flinfo != nullptr ? fcinfo->flinfo->fn_oid : InvalidOid;
  HeapTuple tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
  if (!HeapTupleIsValid(tup)) elog(ERROR, "slotguard: cache lookup failed for function %u", fn);
  const Oid owner = reinterpret_cast<Form_pg_proc>(GETSTRUCT(tup))->proowner;
  ReleaseSysCache(tup);
  scope->enter(owner);
  return caller;
}

// check_access: 42501 unless caller may act on slot. The message names only what the caller
// asked about (the slot or booking id), nothing of the slot's tenant.
void check_access(Oid caller, const Slot& slot, const char* what, int64 id) {
  if (OidIsValid(slot.managed_by) && !has_privs_of_role(caller, slot.managed_by))
    throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE,
                psprintf("permission denied for %s %lld", what, static_cast<long long>(id)),
                "The slot is managed by a role the current user does not have the privileges of.");
}

// lock_holder serializes, until commit, what one holder does on a one-per-holder slot.
void lock_holder(int64 slot_id, const char* holder) {
  const uint64 key = static_cast<uint64>(slot_id) * UINT64CONST(0x9E3779B97F4A7C15) ^
                     DatumGetUInt64(hash_any_extended(
                         reinterpret_cast<const unsigned char*>(holder), strlen(holder), 0));
  sg::util::lock_xact(sg::util::LockClass::kHolder, key);
}

// reserve_common: reserve and reserve_seats (labels != 0).
Datum reserve_common(FunctionCallInfo fcinfo, bool with_labels) {
  const int64 slot_id = int8_arg(fcinfo, 0, "slot_id");
  if (PG_ARGISNULL(1)) throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "holder must not be NULL");
  Request r{};
  r.holder = check_text_arg(fcinfo, 1, "holder", kMaxHolderBytes);
  if (r.holder[0] == '\0') throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "holder must not be empty");
  if (with_labels) {
    if (PG_ARGISNULL(2)) throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "labels must not be NULL");
    ArrayType* a = PG_GETARG_ARRAYTYPE_P(2);
    int n;
    r.wanted = labels_of(a, "labels", &n);
    if (n == 0) throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "labels must not be empty");
    r.seats = n;
    r.labels = PointerGetDatum(a);
  } else {
    if (PG_ARGISNULL(2)) throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "seats must not be NULL");
    r.seats = PG_GETARG_INT32(2);
    if (r.seats < 1)
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                  psprintf("seats must be at least 1, not %d", r.seats));
  }
  Datum ttl = PG_ARGISNULL(3) ? (Datum)0 : PG_GETARG_DATUM(3);
  if (ttl != 0 && !interval_positive(ttl))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "hold_ttl must be positive");
  r.idempotency_key =
      PG_ARGISNULL(4) ? nullptr : check_text_arg(fcinfo, 4, "idempotency_key", kMaxHolderBytes);
  r.confirm = PG_ARGISNULL(5) ? false : PG_GETARG_BOOL(5);
  r.now = GetCurrentTimestamp();

  sg::util::OwnerScope owner;
  const Oid caller = become_owner(fcinfo, &owner);
  spi_connect();
  r.slot = load_slot(slot_id);
  check_access(caller, r.slot, "slot", slot_id);
  if (with_labels && !r.slot.numbered)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                psprintf("slot %lld has no numbered seats", static_cast<long long>(slot_id)), "",
                "Use slotguard.reserve(slot_id, holder, seats).");
  r.expires_at = r.confirm ? 0 : plus(r.now, ttl != 0 ? ttl : r.slot.hold_ttl);

  // A retry with the same idempotency key gets the first booking back.
  Datum result = 0;
  if (find_own(r, InvalidSnapshot)) result = returned_row();
  if (result == 0 && r.slot.one_per_holder) {
    // Serialize this holder's requests for this slot, then look for a live booking.
    lock_holder(slot_id, r.holder);
    // A retry of a request that was in flight until we got the lock: its booking, not SG003.
    if (twin(r)) result = returned_row();
  }
  if (result == 0 && r.slot.one_per_holder) {
    Datum v[3] = {Int64GetDatum(slot_id), CStringGetTextDatum(r.holder),
                  TimestampTzGetDatum(r.now)};
    // A fresh snapshot: under REPEATABLE READ / SERIALIZABLE the transaction's own snapshot may
    // predate the booking of a twin request that committed while we waited for the lock.
    run(kHolderLive, v, nullptr, 1, GetLatestSnapshot());
    if (SPI_processed > 0) {
      sg::stats::count(sg::stats::Scope::kSlot, slot_id, sg::stats::kSoldOut);
      throw Error(sg::errcodes::kSoldOut,
                  psprintf("holder \"%s\" already has a booking for slot %lld", r.holder,
                           static_cast<long long>(slot_id)),
                  free_detail("The slot allows one live booking per holder", slot_id))
          .on(InvalidOid, {}, "one_per_holder");
    }
  }
  const bool again = result != 0;
  if (!again)
    result = with_labels       ? reserve_labels(r)
             : r.slot.numbered ? reserve_numbered(r)
                               : reserve_capacity(r);
  SPI_finish();
  owner.restore();
  if (!again) {
    sg::stats::count(sg::stats::Scope::kSlot, slot_id, sg::stats::kReservations);
    if (r.confirm) sg::stats::count(sg::stats::Scope::kSlot, slot_id, sg::stats::kConfirmations);
  }
  PG_RETURN_DATUM(result);
}

const char* booking_status() {
  return col_text(0, kColStatus);
}

// BookingAccess: a booking's slot, loaded after checking that the caller may act on it.
struct BookingAccess {
  Slot slot;
  int32 shard;  // -1 for numbered seats
  char* holder;
};

// open_booking looks booking `id` up (SG002 when missing) and checks the caller's access to its
// slot (42501). Connected to SPI.
BookingAccess open_booking(Oid caller, int64 id) {
  Datum g[1] = {Int64GetDatum(id)};
  run(kBookingGet, g, nullptr);
  if (SPI_processed == 0)
    throw Error(sg::errcodes::kNotFound,
                psprintf("booking %lld does not exist", static_cast<long long>(id)));
  BookingAccess b;
  const int64 slot_id = col_int8(0, 1);
  bool isnull;
  const Datum shard = col(0, 2, INT4OID, &isnull);
  b.shard = isnull ? -1 : DatumGetInt32(shard);
  b.holder = col_text(0, 3);
  b.slot = load_slot(slot_id);
  check_access(caller, b.slot, "booking", id);
  return b;
}

}  // namespace

// The default hold_ttl of create_slot (SPEC: '2 minutes'), also used when it is passed as NULL.
constexpr int64 kDefaultHoldTtlSeconds = 120;

// slotguard.create_slot(capacity, starts_at, ends_at, resource, hold_ttl, seat_labels,
// one_per_holder, managed_by) -> the new slot's id.
SG_FUNCTION(sg_create_slot) {
  if (PG_ARGISNULL(0)) throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "capacity must not be NULL");
  const int32 capacity = PG_GETARG_INT32(0);
  if (capacity < 0)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                psprintf("capacity must not be negative, not %d", capacity));
  if (!PG_ARGISNULL(1) && !PG_ARGISNULL(2) && PG_GETARG_TIMESTAMPTZ(2) < PG_GETARG_TIMESTAMPTZ(1))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "ends_at must not be before starts_at");
  // A NULL hold_ttl means the default, as for reserve: drivers that bind every parameter cannot
  // leave one out.
  Datum hold_ttl;
  if (PG_ARGISNULL(4)) {
    auto* ttl = static_cast<Interval*>(palloc0(sizeof(Interval)));
    ttl->time = kDefaultHoldTtlSeconds * USECS_PER_SEC;
    hold_ttl = IntervalPGetDatum(ttl);
  } else {
    hold_ttl = PG_GETARG_DATUM(4);
  }
  if (!interval_positive(hold_ttl))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "hold_ttl must be positive");
  const bool numbered = !PG_ARGISNULL(5);
  if (numbered) {
    int n;
    labels_of(PG_GETARG_ARRAYTYPE_P(5), "seat_labels", &n);
    if (n != capacity)
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                  psprintf("capacity %d does not match the %d seat labels", capacity, n),
                  "With numbered seats, capacity must equal the number of seat_labels.");
  }
  const Oid managed_by = PG_NARGS() > 7 && !PG_ARGISNULL(7) ? PG_GETARG_OID(7) : InvalidOid;
  sg::util::OwnerScope owner;
  const Oid caller = become_owner(fcinfo, &owner);
  if (OidIsValid(managed_by)) {
    if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(managed_by)))
      throw Error(ERRCODE_UNDEFINED_OBJECT,
                  psprintf("role with OID %u does not exist", managed_by));
    // As for ALTER ... OWNER TO: a role can hand a slot only to a role whose privileges it has.
    if (!has_privs_of_role(caller, managed_by))
      throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE,
                  psprintf("permission denied to create a slot managed by role \"%s\"",
                           GetUserNameFromId(managed_by, false)),
                  "Only roles with the privileges of the managing role may create its slots.");
  }
  const int32 shards = numbered ? 0 : (capacity < 64 ? capacity : 64);
  Datum v[9] = {Int32GetDatum(capacity),
                PG_GETARG_DATUM(1),
                PG_GETARG_DATUM(2),
                PG_GETARG_DATUM(3),
                hold_ttl,
                numbered ? PG_GETARG_DATUM(5) : (Datum)0,
                BoolGetDatum(PG_ARGISNULL(6) ? false : PG_GETARG_BOOL(6)),
                Int32GetDatum(shards),
                ObjectIdGetDatum(managed_by)};
  char nulls[10] = "         ";
  for (int i = 1; i <= 5; i++)
    if (i != 4 && PG_ARGISNULL(i)) nulls[i] = 'n';
  if (!OidIsValid(managed_by)) nulls[8] = 'n';
  spi_connect();
  run(kInsertSlot, v, nulls);
  const int64 id = col_int8(0, 1);
  if (shards > 0) {
    Datum s[3] = {Int64GetDatum(id), Int32GetDatum(capacity), Int32GetDatum(shards)};
    run(kInsertShards, s, nullptr);
  }
  if (numbered) {
    Datum s[2] = {Int64GetDatum(id), PG_GETARG_DATUM(5)};
    run(kInsertSeats, s, nullptr);
  }
  SPI_finish();
  owner.restore();
  PG_RETURN_INT64(id);
}

// slotguard.reserve(slot_id, holder, seats, hold_ttl, idempotency_key, confirm) -> the booking.
SG_FUNCTION(sg_reserve) {
  return reserve_common(fcinfo, false);
}

// slotguard.reserve_seats(slot_id, holder, labels, hold_ttl, idempotency_key, confirm).
SG_FUNCTION(sg_reserve_seats) {
  return reserve_common(fcinfo, true);
}

// slotguard.confirm(booking_id): a live hold becomes confirmed; confirmed ones come back as they
// are; an expired hold is SG004, a cancelled booking SG005.
SG_FUNCTION(sg_confirm) {
  const int64 id = int8_arg(fcinfo, 0, "booking_id");
  sg::util::OwnerScope owner;
  const Oid caller = become_owner(fcinfo, &owner);
  spi_connect();
  {
    const BookingAccess b = open_booking(caller, id);
    // On a one-per-holder slot a confirm and a new reserve of the same holder must not overlap:
    // the reserve would see the hold as dead while the confirm makes it live again.
    if (b.slot.one_per_holder && b.holder != nullptr) lock_holder(b.slot.id, b.holder);
  }
  Datum g[1] = {Int64GetDatum(id)};
  run(kBookingLock, g, nullptr);
  if (SPI_processed == 0)
    throw Error(sg::errcodes::kNotFound,
                psprintf("booking %lld does not exist", static_cast<long long>(id)));
  // The clock is read once the booking is ours: a confirm that waited past the hold's expiry
  // (behind a buyer taking the seats back) must see that it expired.
  const TimestampTz now = GetCurrentTimestamp();
  Datum v[2] = {Int64GetDatum(id), TimestampTzGetDatum(now)};
  const char* status = booking_status();
  if (status == nullptr) elog(ERROR, "slotguard: booking %lld has no status", (long long)id);
  bool isnull;
  const Datum expires = col(0, kColExpires, TIMESTAMPTZOID, &isnull);
  const bool dead = strcmp(status, "expired") == 0 || (strcmp(status, "pending") == 0 && !isnull &&
                                                       DatumGetTimestampTz(expires) <= now);
  if (strcmp(status, "confirmed") == 0) {
    Datum result = returned_row();
    SPI_finish();
    owner.restore();
    PG_RETURN_DATUM(result);
  }
  if (strcmp(status, "cancelled") == 0)
    throw Error(
        sg::errcodes::kInvalidTransition,
        psprintf("booking %lld is cancelled and cannot be confirmed", static_cast<long long>(id)),
        "", "Allowed next states from \"cancelled\": none.");
  if (dead)
    throw Error(sg::errcodes::kHoldExpired,
                psprintf("hold %lld has expired", static_cast<long long>(id)),
                "Its seats have been released; reserve again.");
  const int64 slot = col_int8(0, kColSlot);
  run(kConfirm, v, nullptr);
  Datum result = returned_row();
  SPI_finish();
  owner.restore();
  sg::stats::count(sg::stats::Scope::kSlot, slot, sg::stats::kConfirmations);
  PG_RETURN_DATUM(result);
}

// slotguard.cancel(booking_id): releases the seats. A cancelled booking comes back unchanged; a
// hold that has expired (swept or not) comes back with status 'expired'.
SG_FUNCTION(sg_cancel) {
  const int64 id = int8_arg(fcinfo, 0, "booking_id");
  const TimestampTz now = GetCurrentTimestamp();
  sg::util::OwnerScope owner;
  const Oid caller = become_owner(fcinfo, &owner);
  spi_connect();
  const BookingAccess b = open_booking(caller, id);
  const int64 slot = b.slot.id;
  const int32 shard = b.shard;
  if (shard >= 0) {  // lock order: shard, then booking
    Datum s[2] = {Int64GetDatum(slot), Int32GetDatum(shard)};
    run(kShardLock, s, nullptr);
  }
  Datum g[1] = {Int64GetDatum(id)};
  run(kBookingLock, g, nullptr);
  if (SPI_processed == 0)
    throw Error(sg::errcodes::kNotFound,
                psprintf("booking %lld does not exist", static_cast<long long>(id)));
  const char* status = booking_status();
  if (status == nullptr) elog(ERROR, "slotguard: booking %lld has no status", (long long)id);
  if (strcmp(status, "cancelled") == 0 || strcmp(status, "expired") == 0) {
    Datum result = returned_row();
    SPI_finish();
    owner.restore();
    PG_RETURN_DATUM(result);
  }
  bool isnull;
  const Datum expires = col(0, kColExpires, TIMESTAMPTZOID, &isnull);
  const int32 seats = col_int(0, kColSeats);
  const bool dead =
      strcmp(status, "pending") == 0 && !isnull && DatumGetTimestampTz(expires) <= now;
  Datum c[3] = {Int64GetDatum(id), CStringGetTextDatum(dead ? "expired" : "cancelled"),
                TimestampTzGetDatum(now)};
  run(kCancel, c, nullptr);
  Datum result = returned_row();
  if (shard >= 0) {
    Datum m[2] = {Int64GetDatum(slot), Int32GetDatum(shard)};
    run(kShardMinExpiry, m, nullptr);
    Datum next = col(0, 1, TIMESTAMPTZOID, &isnull);
    Datum u[4] = {Int64GetDatum(slot), Int32GetDatum(shard), Int32GetDatum(seats), next};
    const char nulls[5] = {' ', ' ', ' ', isnull ? 'n' : ' ', '\0'};
    run(kShardUsed, u, nulls);
  }
  SPI_finish();
  owner.restore();
  sg::stats::count(sg::stats::Scope::kSlot, slot,
                   dead ? sg::stats::kExpirations : sg::stats::kCancellations);
  PG_RETURN_DATUM(result);
}

// slotguard.booking(booking_id): one booking as its holder would see it now, without writing: a
// pending hold past its expires_at reads as 'expired' whether or not a sweep has marked it.
SG_FUNCTION(sg_booking) {
  const int64 id = int8_arg(fcinfo, 0, "booking_id");
  sg::util::OwnerScope owner;
  const Oid caller = become_owner(fcinfo, &owner);
  spi_connect();
  open_booking(caller, id);
  Datum g[1] = {Int64GetDatum(id)};
  run(kBookingRead, g, nullptr);
  if (SPI_processed == 0)
    throw Error(sg::errcodes::kNotFound,
                psprintf("booking %lld does not exist", static_cast<long long>(id)));
  const char* status = booking_status();
  bool isnull;
  const Datum expires = col(0, kColExpires, TIMESTAMPTZOID, &isnull);
  HeapTuple tuple = SPI_tuptable->vals[0];
  if (status != nullptr && strcmp(status, "pending") == 0 && !isnull &&
      DatumGetTimestampTz(expires) <= GetCurrentTimestamp()) {
    int column = kColStatus;
    Datum value = CStringGetTextDatum("expired");
    bool null = false;
    tuple = heap_modify_tuple_by_cols(tuple, SPI_tuptable->tupdesc, 1, &column, &value, &null);
  }
  Datum result = PointerGetDatum(SPI_returntuple(tuple, SPI_tuptable->tupdesc));
  SPI_finish();
  owner.restore();
  PG_RETURN_DATUM(result);
}

// slotguard.expire_holds(max_rows): marks up to max_rows dead holds 'expired' and returns how
// many. Skips whatever another session holds locked (a buyer or another sweeper): it never waits.
SG_FUNCTION(sg_expire_holds) {
  const int32 max_rows = PG_ARGISNULL(0) ? 10000 : PG_GETARG_INT32(0);
  if (max_rows < 1) throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "max_rows must be at least 1");
  const TimestampTz now = GetCurrentTimestamp();
  int32 total = 0;
  spi_connect();
  while (total < max_rows) {
    CHECK_FOR_INTERRUPTS();
    // At most as many shards as there are holds left to expire: locking more would only keep
    // them from other sweepers.
    const int64 want = max_rows - total < 64 ? max_rows - total : 64;
    Datum v[2] = {TimestampTzGetDatum(now), Int64GetDatum(want)};
    run(kExpireShards, v, nullptr);
    const int n = static_cast<int>(SPI_processed);
    if (n == 0) break;
    int64* slots = static_cast<int64*>(palloc(sizeof(int64) * n));
    int32* shards = static_cast<int32*>(palloc(sizeof(int32) * n));
    for (int i = 0; i < n; i++) {
      slots[i] = col_int8(i, 1);
      shards[i] = col_int(i, 2);
    }
    // A shard's next_expiry may be stale (its holds were confirmed or cancelled): reclaiming
    // sets it right, which is progress too. Stop when a round changed nothing (what is left is
    // held by others).
    bool progress = false;
    for (int i = 0; i < n && total < max_rows; i++) {
      CHECK_FOR_INTERRUPTS();
      int32 count;
      bool settled;
      reclaim(slots[i], shards[i], now, max_rows - total, &count, &settled);
      total += count;
      progress = progress || count > 0 || settled;
    }
    if (!progress) break;
  }
  if (total < max_rows) {
    Datum v[2] = {TimestampTzGetDatum(now), Int32GetDatum(max_rows - total)};
    run(kExpireSeatBookings, v, nullptr);
    const int n = static_cast<int>(SPI_processed);
    for (int i = 0; i < n; i++) {
      const int64 slot = col_int8(i, 1);
      const int32 count = col_int(i, 2);
      sg::stats::count(sg::stats::Scope::kSlot, slot, sg::stats::kExpirations, count);
      total += count;
    }
  }
  SPI_finish();
  PG_RETURN_INT32(total);
}

// slotguard.availability(slot_id) -> (capacity, confirmed, held, free); dead holds count as free.
SG_FUNCTION(sg_availability) {
  const int64 slot = int8_arg(fcinfo, 0, "slot_id");
  InitMaterializedSRF(fcinfo, 0);
  auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  sg::util::OwnerScope owner;
  const Oid caller = become_owner(fcinfo, &owner);
  spi_connect();
  check_access(caller, load_slot(slot), "slot", slot);
  Datum v[2] = {Int64GetDatum(slot), TimestampTzGetDatum(GetCurrentTimestamp())};
  run(kAvailability, v, nullptr);
  if (SPI_processed == 0)
    throw Error(sg::errcodes::kNotFound,
                psprintf("slot %lld does not exist", static_cast<long long>(slot)));
  const int32 capacity = col_int(0, 1), confirmed = col_int(0, 2), held = col_int(0, 3);
  SPI_finish();
  owner.restore();
  Datum values[4] = {Int32GetDatum(capacity), Int32GetDatum(confirmed), Int32GetDatum(held),
                     Int32GetDatum(capacity - confirmed - held)};
  bool nulls[4] = {false, false, false, false};
  tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
  return (Datum)0;
}

// slotguard.next_expiry() -> when the next hold expires (in the past if one is waiting to be
// swept), or NULL when no hold is pending.
SG_FUNCTION(sg_next_expiry) {
  spi_connect();
  run(kNextExpiry, nullptr, nullptr);
  bool isnull;
  const Datum d = col(0, 1, TIMESTAMPTZOID, &isnull);
  const TimestampTz t = isnull ? 0 : DatumGetTimestampTz(d);
  SPI_finish();
  if (isnull) PG_RETURN_NULL();
  PG_RETURN_TIMESTAMPTZ(t);
}
