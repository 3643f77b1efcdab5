// slots: what a slot is, as the reservation functions see it. create_slot (run when an admin
// makes a slot) inserts the slot with its shards or its numbered seats; load_slot (run by every
// function that acts on a slot) reads it through a per-backend cache; check_access decides who
// may act on it.
#include "reservation.hpp"

namespace sg::reservation {

using sg::Error;

namespace {

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
    slot_cache = sg::util::backend_hash("slotguard slots", 64, sizeof(int64), sizeof(CachedSlot));
    slot_cache_relid = relid;
  }
  if (!create) return static_cast<CachedSlot*>(hash_search(slot_cache, &id, HASH_FIND, nullptr));
  if (hash_get_num_entries(slot_cache) > 100000) {
    forget_slots(0, InvalidOid);
    return cached_slot(id, true);
  }
  return static_cast<CachedSlot*>(hash_search(slot_cache, &id, HASH_ENTER, nullptr));
}

}  // namespace

Slot load_slot(int64 id) {
  if (CachedSlot* c = cached_slot(id, false)) {
    Slot s = c->slot;
    s.hold_ttl = IntervalPGetDatum(&c->ttl);
    return s;
  }
  Datum v[1] = {Int64GetDatum(id)};
  run(kSlot, v, nullptr);
  if (SPI_processed == 0)
    throw Error(sg::errcodes::kNotFound, sg::errors::slot_not_found_message(id));
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

int32 current_free(int64 slot) {
  Datum v[2] = {Int64GetDatum(slot), TimestampTzGetDatum(GetCurrentTimestamp())};
  run(kAvailability, v, nullptr);
  if (SPI_processed == 0) return 0;
  return col_int(0, 1) - col_int(0, 2) - col_int(0, 3);
}

// ---- who may act on a slot (docs/guarantees.md "Privileges")
// -----------------------------------------------
//
// A slot created with managed_by admits only roles that have the privileges of that role (as
// has_privs_of_role() decides: members that inherit it, and superusers); without it, any role
// allowed to EXECUTE the functions may act on it. To know its caller, a function that acts on a
// slot or a booking is SECURITY INVOKER (with a pinned search_path): it notes the caller
// (GetUserId()) and only then switches to the function's owner itself, which SECURITY DEFINER
// would have done before the body ran, hiding the caller. The switch is undone when the function
// returns, and by the (sub)transaction abort of an error.

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

void check_access(Oid caller, const Slot& slot, const char* what, int64 id) {
  if (OidIsValid(slot.managed_by) && !has_privs_of_role(caller, slot.managed_by))
    throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE,
                psprintf("permission denied for %s %lld", what, static_cast<long long>(id)),
                "The slot is managed by a role the current user does not have the privileges of.");
}

void lock_holder(int64 slot_id, const char* holder) {
  const uint64 key = static_cast<uint64>(slot_id) * UINT64CONST(0x9E3779B97F4A7C15) ^
                     DatumGetUInt64(hash_any_extended(
                         reinterpret_cast<const unsigned char*>(holder), strlen(holder), 0));
  sg::util::lock_xact(sg::util::LockClass::kHolder, key);
}

// ---- create_slot ------------------------------------------------------------------------------

namespace {

// The default hold_ttl of create_slot (docs/sql-api.md "Slot-seat reservation": '2 minutes'), also
// used when it is passed as NULL.
constexpr int64 kDefaultHoldTtlSeconds = 120;

// slot_hold_ttl returns argument 4, hold_ttl: the default when NULL (drivers that bind every
// parameter cannot leave one out), 22023 unless positive.
Datum slot_hold_ttl(FunctionCallInfo fcinfo) {
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
  return hold_ttl;
}

// check_seat_labels checks argument 5, seat_labels, when given: valid labels, as many as seats.
void check_seat_labels(FunctionCallInfo fcinfo, int32 capacity) {
  int n;
  labels_of(PG_GETARG_ARRAYTYPE_P(5), "seat_labels", &n);
  if (n != capacity)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                psprintf("capacity %d does not match the %d seat labels", capacity, n),
                "With numbered seats, capacity must equal the number of seat_labels.");
}

// check_manager: managed_by must be a role, and one whose privileges the caller has.
void check_manager(Oid caller, Oid managed_by) {
  if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(managed_by)))
    throw Error(ERRCODE_UNDEFINED_OBJECT, psprintf("role with OID %u does not exist", managed_by));
  // As for ALTER ... OWNER TO: a role can hand a slot only to a role whose privileges it has.
  if (!has_privs_of_role(caller, managed_by))
    throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE,
                psprintf("permission denied to create a slot managed by role \"%s\"",
                         GetUserNameFromId(managed_by, false)),
                "Only roles with the privileges of the managing role may create its slots.");
}

// insert_slot inserts the slot of create_slot's arguments, then its shards (plain seats) or its
// seats (numbered); returns its id. Connected to SPI.
int64 insert_slot(FunctionCallInfo fcinfo, int32 capacity, Datum hold_ttl, Oid managed_by) {
  const bool numbered = !PG_ARGISNULL(5);
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
  return id;
}

}  // namespace

}  // namespace sg::reservation

using namespace sg::reservation;  // the SQL-callable function below

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
  const Datum hold_ttl = slot_hold_ttl(fcinfo);
  if (!PG_ARGISNULL(5)) check_seat_labels(fcinfo, capacity);
  const Oid managed_by = PG_NARGS() > 7 && !PG_ARGISNULL(7) ? PG_GETARG_OID(7) : InvalidOid;
  sg::util::OwnerScope owner;
  const Oid caller = become_owner(fcinfo, &owner);
  if (OidIsValid(managed_by)) check_manager(caller, managed_by);
  spi_connect();
  const int64 id = insert_slot(fcinfo, capacity, hold_ttl, managed_by);
  SPI_finish();
  owner.restore();
  PG_RETURN_INT64(id);
}
