// bookings: the life of a booking after reserve made it — confirm, cancel, booking (read one),
// expire_holds (the sweeper, run by slotguardd or cron) — and the slot-wide reads availability and
// next_expiry. Lock order as everywhere: the shard row before the booking row, so cancel locks the
// shard first and confirm touches neither.
#include "reservation.hpp"
#include "stats.hpp"

namespace sg::reservation {

using sg::Error;

namespace {

[[noreturn]] void booking_not_found(int64 id) {
  throw Error(sg::errcodes::kNotFound, sg::errors::booking_not_found_message(id));
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
  if (SPI_processed == 0) booking_not_found(id);
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

// expire_shard_holds takes back up to max_rows dead holds of plain-capacity slots, shard by
// shard, skipping shards another session holds locked; returns how many.
int32 expire_shard_holds(TimestampTz now, int32 max_rows) {
  int32 total = 0;
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
  return total;
}

// expire_seat_holds marks up to max_rows dead holds of numbered-seat slots 'expired' (their
// seats are free once their booking is dead); returns how many.
int32 expire_seat_holds(TimestampTz now, int32 max_rows) {
  int32 total = 0;
  Datum v[2] = {TimestampTzGetDatum(now), Int32GetDatum(max_rows)};
  run(kExpireSeatBookings, v, nullptr);
  const int n = static_cast<int>(SPI_processed);
  for (int i = 0; i < n; i++) {
    const int64 slot = col_int8(i, 1);
    const int32 count = col_int(i, 2);
    sg::stats::count(sg::stats::Scope::kSlot, slot, sg::stats::kExpirations, count);
    total += count;
  }
  return total;
}

}  // namespace

}  // namespace sg::reservation

using namespace sg::reservation;  // the SQL-callable functions below

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
  if (SPI_processed == 0) booking_not_found(id);
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
    throw Error(sg::errcodes::kHoldExpired, sg::errors::hold_expired_message(id),
                std::string(sg::errors::kHoldExpiredDetail));
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
  if (SPI_processed == 0) booking_not_found(id);
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
  if (shard >= 0) release_shard_seats(slot, shard, seats, &isnull);
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
  if (SPI_processed == 0) booking_not_found(id);
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
  spi_connect();
  int32 total = expire_shard_holds(now, max_rows);
  if (total < max_rows) total += expire_seat_holds(now, max_rows - total);
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
    throw Error(sg::errcodes::kNotFound, sg::errors::slot_not_found_message(slot));
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
