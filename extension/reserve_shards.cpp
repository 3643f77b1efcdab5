// reserve_shards: how reserve decides a plain-capacity slot (docs/design.md "Hot slots"), run for
// every buyer of such a slot; also the shard bookkeeping that cancel and expire_holds share.
//
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
//
// reserve_capacity tries, in order: the unlocked shards (never waiting), the sold-out answer read
// without locking, a wait for one busy shard, and the slow path over every shard.
#include "reservation.hpp"
#include "stats.hpp"

namespace sg::reservation {

Datum release_shard_seats(int64 slot, int32 shard, int32 seats, bool* none) {
  Datum m[2] = {Int64GetDatum(slot), Int32GetDatum(shard)};
  run(kShardMinExpiry, m, nullptr);
  Datum next = col(0, 1, TIMESTAMPTZOID, none);
  Datum u[4] = {Int64GetDatum(slot), Int32GetDatum(shard), Int32GetDatum(seats), next};
  const char nulls[5] = {' ', ' ', ' ', *none ? 'n' : ' ', '\0'};
  run(kShardUsed, u, nulls);
  return next;
}

int32 reclaim(int64 slot, int32 shard, TimestampTz now, int32 limit, int32* count, bool* settled) {
  Datum v[4] = {Int64GetDatum(slot), Int32GetDatum(shard), TimestampTzGetDatum(now),
                Int32GetDatum(limit)};
  run(kShardReclaim, v, nullptr);
  const int32 seats = col_int(0, 1);
  *count = col_int(0, 2);
  bool none;
  const Datum next = release_shard_seats(slot, shard, seats, &none);
  if (settled) *settled = none || DatumGetTimestampTz(next) > now;
  if (*count > 0) sg::stats::count(sg::stats::Scope::kSlot, slot, sg::stats::kExpirations, *count);
  return seats;
}

namespace {

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

// book_in_one_statement is the fastest path: an unlocked shard with room, from `start` on, then
// before it, found, counted and booked in one statement. 0 when none has room.
Datum book_in_one_statement(const Request& r, int32 start) {
  const Slot& slot = r.slot;
  for (int pass = 0; pass < 2; pass++) {
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
    if (SPI_processed > 0) return returned_row();
  }
  return 0;
}

// book_in_picked_shard is the fast path: one unlocked shard with room, or with dead holds to take
// back, at a time. 0 when none has room.
Datum book_in_picked_shard(const Request& r, int32 start) {
  const Slot& slot = r.slot;
  int32 tried[64];
  int ntried = 0;
  while (ntried < 64) {
    Datum v[6] = {Int64GetDatum(slot.id), Int32GetDatum(r.seats),     TimestampTzGetDatum(r.now),
                  Int32GetDatum(start),   Int32GetDatum(slot.shards), int_array(tried, ntried)};
    run(kShardPick, v, nullptr);
    if (SPI_processed == 0) break;
    const int32 shard = col_int(0, 1);
    const int32 capacity = col_int(0, 2);
    int32 used = col_int(0, 3);
    if (capacity - used < r.seats) {
      int32 n;
      used -= reclaim(slot.id, shard, r.now, PG_INT32_MAX, &n);
    }
    if (capacity - used >= r.seats) return book_in_shard(r, shard);
    tried[ntried++] = shard;
  }
  return 0;
}

// try_unlocked_shards runs both fast paths (in_subxact body): true, with *booked set, when one
// booked. With an idempotency key the insert must be able to lose to a concurrent twin, which
// the one-statement path cannot tell: it is skipped.
bool try_unlocked_shards(const Request& r, int32 start, Datum* booked) noexcept {
  if (r.idempotency_key == nullptr) *booked = book_in_one_statement(r, start);
  if (*booked == 0) *booked = book_in_picked_shard(r, start);
  return *booked != 0;
}

// book_when_locked waits for one shard's lock (in_subxact body) and books there if it still has
// room then: true, with *booked set, when it did.
bool book_when_locked(const Request& r, int32 shard, Datum* booked) noexcept {
  Datum l[2] = {Int64GetDatum(r.slot.id), Int32GetDatum(shard)};
  run(kShardLockRoom, l, nullptr);
  if (SPI_processed > 0 && col_int(0, 1) >= r.seats) *booked = book_in_shard(r, shard);
  return *booked != 0;
}

// book_after_waiting runs when no unlocked shard could book. Sold out as far as committed
// bookings go (and nothing to take back): it says so without locking anything, so that buyers of
// a full slot do not queue behind each other. Room enough, but every shard with room is locked by
// a buyer in flight (more buyers than shards): it queues for one shard — never for all of them,
// which would serialize the slot. The wait holds no other lock of ours, and its lock is given
// back (subtransaction) when the shard turns out to be full once we have it, so waiters never
// wait for each other. Returns the booking, or 0: try the slow path.
Datum book_after_waiting(const Request& r, int32 start) {
  const Slot& slot = r.slot;
  Datum v[2] = {Int64GetDatum(slot.id), TimestampTzGetDatum(r.now)};
  run(kShardsRoom, v, nullptr, 0, GetLatestSnapshot());
  const int32 room = col_int(0, 1);
  const bool dead = col_bool(0, 2);
  if (room < r.seats && !dead) {
    if (twin(r)) return returned_row();
    sold_out(slot, r.seats, room, "");
  }
  if (room < r.seats) return 0;
  Datum w[4] = {Int64GetDatum(slot.id), Int32GetDatum(r.seats), Int32GetDatum(start),
                Int32GetDatum(slot.shards)};
  run(kShardWait, w, nullptr, 0, GetLatestSnapshot());
  if (SPI_processed == 0) return 0;
  const int32 shard = col_int(0, 1);
  Datum booked = 0;
  in_subxact(book_when_locked, r, shard, &booked);
  return booked;
}

// move_room moves free capacity from the other locked shards into shard[best] until it has room
// for `seats`.
void move_room(int64 slot, const int32* shard, const int32* room, int n, int best, int32 seats) {
  int32 need = seats - room[best];
  for (int i = 0; i < n && need > 0; i++) {
    if (i == best || room[i] <= 0) continue;
    const int32 give = room[i] < need ? room[i] : need;
    Datum a[3] = {Int64GetDatum(slot), Int32GetDatum(shard[i]), Int32GetDatum(-give)};
    run(kShardGrow, a, nullptr);
    Datum b[3] = {Int64GetDatum(slot), Int32GetDatum(shard[best]), Int32GetDatum(give)};
    run(kShardGrow, b, nullptr);
    need -= give;
  }
}

// book_in_all_shards is the slow path: lock every shard in order, take back dead holds, and
// gather free capacity into the shard with the most room — or answer sold out with the exact
// count.
Datum book_in_all_shards(const Request& r) {
  const Slot& slot = r.slot;
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
  move_room(slot.id, shard, room, n, best, r.seats);
  return book_in_shard(r, shard[best]);
}

}  // namespace

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
  in_subxact(try_unlocked_shards, r, start, &booked);
  if (booked == 0) booked = book_after_waiting(r, start);
  if (booked == 0) booked = book_in_all_shards(r);
  return booked;
}

}  // namespace sg::reservation
