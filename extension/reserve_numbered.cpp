// reserve_numbered: how reserve and reserve_seats decide a slot with numbered seats, run for every
// buyer of such a slot.
//
// Numbered seats have one row each in slotguard.seats, pointing at the booking that took them; a
// seat is free when that booking is dead (confirmed, or pending and not expired, is live). A
// buyer locks the seat rows it means to take, takes back the dead holds that own them (status
// 'expired', under the seat's lock), checks in a fresh statement which are free, inserts the
// booking and points the seats at it. reserve picks the first free seats in label order;
// reserve_seats takes exactly the labels asked for, or none.
#include "reservation.hpp"
#include "stats.hpp"

namespace sg::reservation {

namespace {

// book_seats inserts r's booking of the n seats ords[0..n) (labels: their text[]), known free,
// and points the seats at it.
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

// ---- reserve on a numbered slot ---------------------------------------------------------------

// Held: the seats reserve_numbered holds locked and knows free, room for `cap` of them.
struct Held {
  int cap;
  int n;
  int32* ords;
  Datum* labels;
  int32* cand;  // scratch: the candidates of one statement
};

// OrdLabel is a numbered seat (its ord) with its label, as a booking's result lists them.
struct OrdLabel {
  int32 ord;
  Datum label;
};

int ord_cmp(const void* a, const void* b, void*) {
  const int32 x = static_cast<const OrdLabel*>(a)->ord, y = static_cast<const OrdLabel*>(b)->ord;
  return (x > y) - (x < y);
}

// hold_unlocked_seats (in_subxact body) locks the seats nobody holds locked (SKIP LOCKED) and
// keeps the free ones, until it has r.seats: true when it has. Each batch starts after the last
// seat of the one before, so every seat is looked at once (seats skipped as locked are left to
// the exact path).
bool hold_unlocked_seats(const Request& r, Held* h) noexcept {
  int32 last = PG_INT32_MIN;
  while (h->n < r.seats) {
    CHECK_FOR_INTERRUPTS();
    Datum v[4] = {Int64GetDatum(r.slot.id), TimestampTzGetDatum(r.now), Int32GetDatum(last),
                  Int64GetDatum(r.seats - h->n)};
    run(kSeatsCandidates, v, nullptr);
    const int n = static_cast<int>(SPI_processed);
    if (n == 0) break;
    for (int i = 0; i < n; i++) h->cand[i] = col_int(i, 1);
    last = h->cand[n - 1];
    h->n += free_among(r, h->cand, n, h->ords + h->n, h->labels + h->n);
  }
  return h->n >= r.seats;
}

// hold_every_free_seat is the exact path: it waits for every seat that looks free, in label
// order, and keeps the free ones (h->n of them). Not enough free seats even counting dead holds:
// sold out, without locking anything (or the booking of a twin request, returned).
Datum hold_every_free_seat(const Request& r, Held* h) {
  h->n = 0;
  Datum c[2] = {Int64GetDatum(r.slot.id), TimestampTzGetDatum(r.now)};
  run(kSeatsFreeCount, c, nullptr, 0, GetLatestSnapshot());
  const int32 free_now = col_int(0, 1);
  if (free_now < r.seats) {
    if (twin(r)) return returned_row();
    sold_out(r.slot, r.seats, free_now, "");
  }
  Datum v[2] = {Int64GetDatum(r.slot.id), TimestampTzGetDatum(r.now)};
  run(kSeatsCandidatesAll, v, nullptr);
  const int n = static_cast<int>(SPI_processed);
  for (int i = 0; i < n && i < h->cap; i++) h->cand[i] = col_int(i, 1);
  if (n > 0) h->n = free_among(r, h->cand, n < h->cap ? n : h->cap, h->ords, h->labels);
  return 0;
}

// book_first_held books the first r.seats held seats in label order (the exact path may have
// locked more free seats than needed).
Datum book_first_held(const Request& r, Held* h) {
  OrdLabel* seats = static_cast<OrdLabel*>(palloc(sizeof(OrdLabel) * h->n));
  for (int i = 0; i < h->n; i++) seats[i] = OrdLabel{h->ords[i], h->labels[i]};
  qsort_interruptible(seats, h->n, sizeof(OrdLabel), ord_cmp, nullptr);
  for (int i = 0; i < r.seats; i++) {
    h->ords[i] = seats[i].ord;
    h->labels[i] = seats[i].label;
  }
  return book_seats(r, h->ords, text_array(h->labels, r.seats), r.seats);
}

}  // namespace

Datum reserve_numbered(const Request& r) {
  const Slot& slot = r.slot;
  if (r.seats > slot.capacity) sold_out(slot, r.seats, current_free(slot.id), "");
  Held h;
  h.cap = slot.capacity + 1;
  h.n = 0;
  h.ords = static_cast<int32*>(palloc(sizeof(int32) * h.cap));
  h.labels = static_cast<Datum*>(palloc(sizeof(Datum) * h.cap));
  h.cand = static_cast<int32*>(palloc(sizeof(int32) * h.cap));
  // First the seats nobody holds locked, in a subtransaction: if they are not enough, their locks
  // are given back before waiting for the others, so two buyers never hold some seats each while
  // waiting for the other's.
  in_subxact(hold_unlocked_seats, r, &h);
  if (h.n < r.seats) {
    const Datum twin_booking = hold_every_free_seat(r, &h);
    if (twin_booking != 0) return twin_booking;
  }
  if (h.n < r.seats) {
    if (twin(r)) return returned_row();
    sold_out(slot, r.seats, h.n, "");
  }
  return book_first_held(r, &h);
}

// ---- reserve_seats: exactly these labels -----------------------------------------------------

namespace {

// unknown_labels: 22023 naming the labels of r that the slot does not have; known[0..found) are
// the ones it has. Each wanted label is looked up among the known ones, sorted.
[[noreturn]] void unknown_labels(const Request& r, const Label* known_in_ord_order, int found) {
  Label* known = static_cast<Label*>(palloc(sizeof(Label) * (found + 1)));
  memcpy(known, known_in_ord_order, sizeof(Label) * found);
  sort_labels(known, found);
  LabelList unknown;
  list_init(&unknown);
  for (int i = 0; i < r.seats; i++) {
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
  throw sg::Error(
      ERRCODE_INVALID_PARAMETER_VALUE,
      psprintf("slot %lld has no seat %s", static_cast<long long>(r.slot.id), list_text(&unknown)));
}

// taken_labels: SG003 naming the labels of r that are taken. ords / labels are r's seats, in ord
// order; free_ords[0..nfree) the free ones among them, in ord order too.
[[noreturn]] void taken_labels(const Request& r, const int32* ords, const Label* labels,
                               const int32* free_ords, int nfree) {
  const int n = r.seats;
  LabelList taken;
  list_init(&taken);
  for (int i = 0, j = 0; i < n; i++) {
    if ((i & 1023) == 0) CHECK_FOR_INTERRUPTS();
    while (j < nfree && free_ords[j] < ords[i]) j++;
    if (j < nfree && free_ords[j] == ords[i]) continue;
    list_add(&taken, labels[i].data, labels[i].len);
  }
  sold_out(r.slot, n, nfree,
           psprintf(": seat%s %s %s taken", n - nfree == 1 ? "" : "s", list_text(&taken),
                    n - nfree == 1 ? "is" : "are"));
}

}  // namespace

Datum reserve_labels(const Request& r) {
  const int n = r.seats;  // the labels, checked by labels_of: none twice
  Datum v[2] = {Int64GetDatum(r.slot.id), r.labels};
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
  if (found < n) unknown_labels(r, labels, found);
  int32* free_ords = static_cast<int32*>(palloc(sizeof(int32) * (n + 1)));
  Datum* free_labels = static_cast<Datum*>(palloc(sizeof(Datum) * (n + 1)));
  const int nfree = free_among(r, ords, n, free_ords, free_labels);
  if (nfree < n && twin(r)) return returned_row();
  if (nfree < n) taken_labels(r, ords, labels, free_ords, nfree);
  return book_seats(r, free_ords, text_array(free_labels, n), n);
}

}  // namespace sg::reservation
