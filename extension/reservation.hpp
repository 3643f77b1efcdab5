// reservation: slots, holds and bookings (docs/sql-api.md "Slot-seat reservation"). What the
// reservation files share; each file says when its code runs:
//
//   reservation_statements.cpp  the prepared SPI statements (kept with SPI_keepplan) and the
//                               helpers that run them and read their results
//   reservation_inputs.cpp      checks of caller-sized arguments (holders, keys, label arrays)
//   slots.cpp                   create_slot, the per-backend slot cache, who may act on a slot
//   reserve.cpp                 reserve / reserve_seats: the request, idempotency, one-per-holder
//   reserve_shards.cpp          the plain-capacity algorithm (sharded seats, docs/design.md "Hot
//   slots") reserve_numbered.cpp        the numbered-seat algorithm (one row per seat) bookings.cpp
//   confirm, cancel, booking, expire_holds, availability, next_expiry
//
// Lock order everywhere: shard or seat rows, then booking rows — so cancel locks the shard before
// the booking, and confirm touches neither.
//
// create_slot, expire_holds and next_expiry are SECURITY DEFINER; the functions that act on one
// slot or booking are SECURITY INVOKER and switch to the extension's owner themselves once they
// have noted their caller (slots.cpp, "who may act on a slot"). All have a pinned search_path (see
// the install script). The code is written in PostgreSQL's style — palloc'd data, no C++ objects
// with destructors — so PostgreSQL errors may longjmp through it; slotguard's own errors are
// thrown as sg::Error, their texts formatted by common/error_contract.hpp where a program reads
// them back.
#pragma once

#include "boundary.hpp"
#include "util.hpp"

namespace sg::reservation {

// ---- prepared statements (reservation_statements.cpp) -----------------------------------------

// Plan names one statement: its index in kPlans (reservation_statements.cpp), which lists them in
// this order.
enum Plan {
  kSlot,
  kIdempotent,
  kReplayLock,
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

// run executes a prepared statement (preparing and keeping it on first use); `snapshot` other
// than InvalidSnapshot runs it with that snapshot instead of the statement's.
int run(Plan id, const Datum* values, const char* nulls, long limit = 0,
        Snapshot snapshot = InvalidSnapshot);

// col reads one value of the last result, checking that it has the type the code assumes
// (42804 otherwise). The col_* helpers read SQL NULL as 0, false or nullptr.
Datum col(uint64 row, int column, Oid type, bool* isnull);
int32 col_int(uint64 row, int column);
int64 col_int8(uint64 row, int column);
bool col_bool(uint64 row, int column);
char* col_text(uint64 row, int column);  // palloc'd

// returned_row copies the first row of the last result out of SPI as the function's result.
Datum returned_row();

// int_array / text_array build an int4[] / text[] of n items.
Datum int_array(const int32* items, int n);
Datum text_array(const Datum* items, int n);

void spi_connect();

// Column numbers of slotguard.bookings in a SELECT * / RETURNING *.
constexpr int kColId = 1, kColSlot = 2, kColHolder = 3, kColSeats = 4, kColStatus = 6,
              kColShard = 8, kColExpires = 10;

// ---- caller-sized inputs (reservation_inputs.cpp) ---------------------------------------------

// Bounds (docs/sql-api.md "Slot-seat reservation"): longer values are 22023.
constexpr int kMaxLabelBytes = 256;
constexpr int kMaxHolderBytes = 1024;  // also idempotency keys
constexpr int kNamed = 5;              // labels named in an error text; the rest are counted

// Label is one seat label of a caller's array, pointing into the array.
struct Label {
  const char* data;
  int32 len;
  int32 index;  // its position in the caller's array (or in a result)
};

// label_cmp orders labels by bytes, which equals the text equality of seats.label (its
// collation is deterministic: the database default). sort_labels sorts n labels that way,
// checking for interrupts as it goes.
int label_cmp(const Label* a, const Label* b);
void sort_labels(Label* labels, int n);

// labels_of deconstructs a caller's text[] of seat labels: one dimension, no NULL, no empty label,
// none longer than kMaxLabelBytes, no label twice (22023 otherwise). Returns the labels in the
// caller's order; *n receives how many.
Label* labels_of(ArrayType* a, const char* what, int* n);

// LabelList collects labels for an error text: the first kNamed are named, the rest counted
// ("A1, A2, A3, A4, A5 and 7 more").
struct LabelList {
  StringInfoData text;
  int count;
};
void list_init(LabelList* l);
void list_add(LabelList* l, const char* data, int len);
const char* list_text(LabelList* l);

// int8_arg returns argument n, 22023 when it is NULL ("<what> must not be NULL").
int64 int8_arg(FunctionCallInfo fcinfo, int n, const char* what);

// check_text_arg returns a text argument as a C string, 22023 when it is longer than max bytes.
char* check_text_arg(FunctionCallInfo fcinfo, int n, const char* what, int max);

bool interval_positive(Datum interval);
TimestampTz plus(TimestampTz t, Datum interval);

// ---- slots and who may act on them (slots.cpp) ------------------------------------------------

struct Slot {
  int64 id;
  int32 capacity;
  Datum hold_ttl;
  bool numbered;
  bool one_per_holder;
  int32 shards;
  Oid managed_by;  // InvalidOid: any role allowed to EXECUTE the functions may act on the slot
};

// load_slot reads a slot (SG002 when there is none), from the backend's cache when it can.
Slot load_slot(int64 id);

// current_free counts the free seats of a slot as availability() does.
int32 current_free(int64 slot);

// become_owner switches to the owner of the running function (the extension's owner) and
// returns the role that called it.
Oid become_owner(FunctionCallInfo fcinfo, sg::util::OwnerScope* scope);

// check_access: 42501 unless caller may act on slot. The message names only what the caller
// asked about (the slot or booking id), nothing of the slot's tenant.
void check_access(Oid caller, const Slot& slot, const char* what, int64 id);

// lock_holder serializes, until commit, what one holder does on a one-per-holder slot.
void lock_holder(int64 slot_id, const char* holder);

// ---- the reserve algorithm (reserve*.cpp) -----------------------------------------------------

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

// sold_out counts the rejection and raises SG003: "slot N is sold out<what>", with a DETAIL
// saying how many seats were wanted and how many were free.
[[noreturn]] void sold_out(const Slot& slot, int32 wanted, int32 free, const char* what);

// twin looks, in a fresh snapshot, for the booking a concurrent request with r's idempotency key
// made; true when there is one (it is then in SPI_tuptable). reserve.cpp says more.
bool twin(const Request& r);

// insert_booking inserts r's booking (shard -1: none; seat_labels 0: none); false when a
// concurrent request with the same idempotency key won (its booking is then in SPI_tuptable).
bool insert_booking(const Request& r, int32 shard, Datum seat_labels);

// The three ways a request is decided, once reserve.cpp has checked it: the returned Datum is the
// booking (a row of slotguard.bookings).
Datum reserve_capacity(const Request& r);  // reserve_shards.cpp
// reserve_numbered.cpp: reserve on a numbered slot, and reserve_seats (exactly r.wanted).
Datum reserve_numbered(const Request& r);
Datum reserve_labels(const Request& r);

// reclaim takes back a locked shard's dead holds; returns the seats freed. Updates used and
// next_expiry. `limit` caps the bookings touched; *count receives how many were, and *settled
// (if given) whether the shard has no dead hold left that it knows of. (reserve_shards.cpp)
int32 reclaim(int64 slot, int32 shard, TimestampTz now, int32 limit, int32* count,
              bool* settled = nullptr);

// release_shard_seats lowers a locked shard's used by `seats` and sets its next_expiry to its
// earliest pending hold's; returns that expiry (*none: there is no pending hold).
// (reserve_shards.cpp)
Datum release_shard_seats(int64 slot, int32 shard, int32 seats, bool* none);

// in_subxact runs body(args...) in a subtransaction around an attempt that may leave row locks
// behind: rolling it back releases them, so that what follows can wait for a lock without
// holding one another buyer waits for. The subtransaction is kept (released) when body returns
// true and rolled back when it returns false. A PostgreSQL ERROR inside rolls it back and is
// re-raised unchanged, as a PL/pgSQL exception block does, so the caller's transaction (or its
// own subtransaction) is left exactly as an error of any other statement leaves it. body is a
// named PostgreSQL-style step: it must not throw a C++ exception (it would skip PG_CATCH), hence
// noexcept. Memory it allocates lives in the caller's context, not the subtransaction's.
template <typename... Params, typename... Args>
bool in_subxact(bool (*body)(Params...) noexcept, Args&&... args) {
  const MemoryContext context = CurrentMemoryContext;
  const ResourceOwner owner = CurrentResourceOwner;
  BeginInternalSubTransaction(nullptr);
  MemoryContextSwitchTo(context);
  volatile bool keep = false;
  PG_TRY();
  { keep = body(args...); }
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

}  // namespace sg::reservation
