// reservation_inputs: checks of the arguments callers pass to create_slot and reserve /
// reserve_seats, before anything is read or written.
//
// Label arrays, holders and idempotency keys come from callers in any size. Everything done with
// them is O(n log n) (sort, then merge or binary search), checks for interrupts as it goes (so
// statement_timeout and cancel work), and error texts name at most kNamed of them.
#include "reservation.hpp"

namespace sg::reservation {

using sg::Error;

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

int label_cmp(const Label* a, const Label* b) {
  const int c = memcmp(a->data, b->data, a->len < b->len ? a->len : b->len);
  if (c != 0) return c;
  return (a->len > b->len) - (a->len < b->len);
}

namespace {
int label_cmp_arg(const void* a, const void* b, void*) {
  return label_cmp(static_cast<const Label*>(a), static_cast<const Label*>(b));
}
}  // namespace

void sort_labels(Label* labels, int n) {
  qsort_interruptible(labels, n, sizeof(Label), label_cmp_arg, nullptr);
}

char* check_text_arg(FunctionCallInfo fcinfo, int n, const char* what, int max) {
  text* t = PG_GETARG_TEXT_PP(n);
  const int len = VARSIZE_ANY_EXHDR(t);
  if (len > max)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, psprintf("%s is too long", what),
                psprintf("It has %d bytes; at most %d are allowed.", len, max));
  return text_to_cstring(t);
}

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

}  // namespace sg::reservation
