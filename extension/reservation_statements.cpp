// reservation_statements: every SQL statement of slot-seat reservation, in one table, and the
// helpers that run them through SPI and read their results. A statement is prepared the first time
// a backend runs it and kept (SPI_keepplan) for the backend's life, so the hot path plans nothing.
// Called by the reservation files (reservation.hpp) while they are connected to SPI.
#include "reservation.hpp"

namespace sg::reservation {

namespace {

struct PlanDef {
  const char* sql;
  int nargs;
  Oid types[9];
};

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
    // kReplayLock: a replay answers with the booking only once it holds a lock on its row (a
    // write): on a standby (or a demoted primary) the replay fails with 25006 instead of
    // answering from data that may be rewound, and on a primary with synchronous replication
    // its commit waits until everything before it, the first attempt's commit included, is
    // replicated (docs/operations.md "Failover").
    {"SELECT * FROM slotguard.bookings WHERE id = $1 FOR KEY SHARE", 1, {INT8OID}},
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

}  // namespace

// run executes a prepared statement (preparing and keeping it on first use).
int run(Plan id, const Datum* values, const char* nulls, long limit, Snapshot snapshot) {
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

Datum text_array(const Datum* items, int n) {
  return PointerGetDatum(
      construct_array(const_cast<Datum*>(items), n, TEXTOID, -1, false, TYPALIGN_INT));
}

}  // namespace sg::reservation
