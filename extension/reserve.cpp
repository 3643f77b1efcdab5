// reserve: slotguard.reserve and slotguard.reserve_seats, run for every buyer. This file takes
// the request apart (arguments, the slot, the caller's access), answers a retry with its first
// booking (idempotency keys) and keeps one live booking per holder on one_per_holder slots; the
// seats themselves are decided by reserve_shards.cpp (plain capacity) or reserve_numbered.cpp
// (numbered seats).
#include "reservation.hpp"
#include "stats.hpp"

namespace sg::reservation {

using sg::Error;

[[noreturn]] void sold_out(const Slot& slot, int32 wanted, int32 free, const char* what) {
  sg::stats::count(sg::stats::Scope::kSlot, slot.id, sg::stats::kSoldOutRejections);
  throw Error(sg::errcodes::kSoldOut, sg::errors::sold_out_message(slot.id, what),
              sg::errors::sold_out_detail(wanted, free));
}

namespace {

// check_key_holder: the booking in SPI_tuptable has r's idempotency key. It is r's own only when
// the holder is the same: a key reused by another holder is 22023, and the other holder's
// booking is never returned (docs/guarantees.md "Privileges").
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

}  // namespace

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

namespace {

// read_request checks the arguments of reserve (with_labels false) or reserve_seats and returns
// them as a Request without its slot; *ttl receives hold_ttl (0 when NULL: the slot's).
Request read_request(FunctionCallInfo fcinfo, bool with_labels, int64* slot_id, Datum* ttl) {
  *slot_id = int8_arg(fcinfo, 0, "slot_id");
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
  *ttl = PG_ARGISNULL(3) ? (Datum)0 : PG_GETARG_DATUM(3);
  if (*ttl != 0 && !interval_positive(*ttl))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "hold_ttl must be positive");
  r.idempotency_key =
      PG_ARGISNULL(4) ? nullptr : check_text_arg(fcinfo, 4, "idempotency_key", kMaxHolderBytes);
  r.confirm = PG_ARGISNULL(5) ? false : PG_GETARG_BOOL(5);
  r.now = GetCurrentTimestamp();
  return r;
}

// check_holder_free: on a one-per-holder slot, SG003 when r's holder has a live booking of the
// slot. Runs under the holder lock.
void check_holder_free(const Request& r) {
  const int64 slot_id = r.slot.id;
  Datum v[3] = {Int64GetDatum(slot_id), CStringGetTextDatum(r.holder), TimestampTzGetDatum(r.now)};
  // A fresh snapshot: under REPEATABLE READ / SERIALIZABLE the transaction's own snapshot may
  // predate the booking of a twin request that committed while we waited for the lock.
  run(kHolderLive, v, nullptr, 1, GetLatestSnapshot());
  if (SPI_processed == 0) return;
  sg::stats::count(sg::stats::Scope::kSlot, slot_id, sg::stats::kSoldOutRejections);
  const int32 free = current_free(slot_id);
  throw Error(sg::errcodes::kSoldOut, sg::errors::holder_conflict_message(r.holder, slot_id),
              sg::errors::seats_free_detail("The slot allows one live booking per holder", free))
      .on(InvalidOid, {}, "one_per_holder");
}

// earlier_booking returns the booking a retry of r gets back (0 when r is no retry), after the
// one-per-holder check.
Datum earlier_booking(const Request& r) {
  // A retry with the same idempotency key gets the first booking back, locked (kReplayLock).
  if (find_own(r, InvalidSnapshot)) {
    Datum id[1] = {Int64GetDatum(col_int8(0, kColId))};
    run(kReplayLock, id, nullptr);
    if (SPI_processed == 0)
      elog(ERROR, "slotguard: booking with idempotency key \"%s\" vanished", r.idempotency_key);
    return returned_row();
  }
  if (!r.slot.one_per_holder) return 0;
  // Serialize this holder's requests for this slot, then look for a live booking.
  lock_holder(r.slot.id, r.holder);
  // A retry of a request that was in flight until we got the lock: its booking, not SG003.
  if (twin(r)) return returned_row();
  check_holder_free(r);
  return 0;
}

// reserve_common: reserve and reserve_seats (with_labels).
Datum reserve_common(FunctionCallInfo fcinfo, bool with_labels) {
  int64 slot_id;
  Datum ttl;
  Request r = read_request(fcinfo, with_labels, &slot_id, &ttl);
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

  Datum result = earlier_booking(r);
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

}  // namespace

}  // namespace sg::reservation

// slotguard.reserve(slot_id, holder, seats, hold_ttl, idempotency_key, confirm) -> the booking.
SG_FUNCTION(sg_reserve) {
  return sg::reservation::reserve_common(fcinfo, false);
}

// slotguard.reserve_seats(slot_id, holder, labels, hold_ttl, idempotency_key, confirm).
SG_FUNCTION(sg_reserve_seats) {
  return sg::reservation::reserve_common(fcinfo, true);
}
