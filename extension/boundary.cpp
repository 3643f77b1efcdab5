// boundary: the catch side of every SQL-callable function (see boundary.hpp): turns what the C++
// body threw into one ereport(ERROR), with slotguard's SQLSTATE, DETAIL, HINT and the error fields
// that name the table, column and constraint (docs/errors.md); and guard()'s rethrow.
#include "boundary.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <new>

namespace sg {

namespace detail {

void rethrow_as_pg_error(MemoryContext context) {
  MemoryContextSwitchTo(context);
  ErrorData* edata = CopyErrorData();
  FlushErrorState();
  throw PgError(edata);
}

}  // namespace detail

namespace {

// The text of a caught C++ exception, copied inside the catch so that ereport can run after it.
// A backend is single-threaded and ereport(ERROR) does not return, so static storage is safe.
struct Pending {
  int sqlstate;
  char message[1024];
  char detail[4096];
  char hint[1024];
  Oid relid;
  char column[NAMEDATALEN];
  char constraint[NAMEDATALEN];
};
Pending pending;

// copy_text copies src into dst, cut at a character boundary of the database encoding when it is
// too long (a byte cut could leave half a character, which the client's encoding conversion then
// refuses). pg_mbcliplen only measures characters: it raises no error.
void copy_text(char* dst, std::size_t size, const char* src) {
  if (src == nullptr) src = "";
  const std::size_t len = std::strlen(src);
  const std::size_t n = len < size ? len
                                   : static_cast<std::size_t>(pg_mbcliplen(
                                         src, static_cast<int>(std::min<std::size_t>(len, INT_MAX)),
                                         static_cast<int>(size - 1)));
  std::memcpy(dst, src, n);
  dst[n] = '\0';
}

void set_pending(int sqlstate, const char* message, const char* detail, const char* hint) noexcept {
  pending.sqlstate = sqlstate;
  copy_text(pending.message, sizeof pending.message, message);
  copy_text(pending.detail, sizeof pending.detail, detail);
  copy_text(pending.hint, sizeof pending.hint, hint);
  pending.relid = InvalidOid;
  pending.column[0] = '\0';
  pending.constraint[0] = '\0';
}

// Error fields naming the table, column and constraint; only non-empty ones are set.
int diag_field(int field, const char* value) {
  return value != nullptr && value[0] != '\0' ? err_generic_string(field, value) : 0;
}

}  // namespace

Datum boundary(Datum (*body)(FunctionCallInfo), FunctionCallInfo fcinfo) {
  ErrorData* pg_error = nullptr;
  try {
    return body(fcinfo);
  } catch (const PgError& e) {
    pg_error = e.edata();
  } catch (const Error& e) {
    set_pending(e.sqlstate(), e.what(), e.detail().c_str(), e.hint().c_str());
    pending.relid = e.relid();
    copy_text(pending.column, sizeof pending.column, e.column().c_str());
    copy_text(pending.constraint, sizeof pending.constraint, e.constraint().c_str());
  } catch (const std::bad_alloc&) {
    set_pending(ERRCODE_OUT_OF_MEMORY, "out of memory", "", "");
  } catch (const std::exception& e) {
    set_pending(ERRCODE_INTERNAL_ERROR, e.what(), "", "");
  } catch (...) {
    set_pending(ERRCODE_INTERNAL_ERROR, "unknown C++ exception", "", "");
  }
  // No C++ object is alive past this point: raising the PostgreSQL error is safe.
  if (pg_error != nullptr) ReThrowError(pg_error);
  const char* schema_name = nullptr;
  const char* table_name = nullptr;
  if (OidIsValid(pending.relid)) {
    table_name = get_rel_name(pending.relid);
    if (table_name != nullptr) schema_name = get_namespace_name(get_rel_namespace(pending.relid));
  }
  ereport(ERROR,
          (errcode(pending.sqlstate), errmsg_internal("%s", pending.message),
           pending.detail[0] ? errdetail_internal("%s", pending.detail) : 0,
           pending.hint[0] ? errhint("%s", pending.hint) : 0,
           diag_field(PG_DIAG_SCHEMA_NAME, schema_name), diag_field(PG_DIAG_TABLE_NAME, table_name),
           diag_field(PG_DIAG_COLUMN_NAME, pending.column),
           diag_field(PG_DIAG_CONSTRAINT_NAME, pending.constraint)));
  pg_unreachable();
}

}  // namespace sg
