// boundary: the one module through which every SQL-callable function of slotguard passes.
//
// C++ -> PostgreSQL. SG_FUNCTION(name) emits the extern "C" entry point PostgreSQL calls. It runs
// the C++ body inside try/catch; whatever was thrown is copied into static buffers inside the
// catch, and ereport(ERROR) is raised only after the catch, when no C++ frame with a destructor is
// left on the stack. sg::Error carries slotguard's own SQLSTATEs; sg::PgError a PostgreSQL error
// caught by guard(); anything else becomes XX000 (std::bad_alloc: 53200).
//
// PostgreSQL -> C++. A PostgreSQL call that can ereport(ERROR) longjmps over the frames above it.
// In a frame that holds C++ objects with destructors (std::string, containers, unique_ptr) such a
// call is wrapped in guard([&] { ... }): guard installs its own sigsetjmp target, and on a longjmp
// restores the memory context and error context stack, copies and flushes the error and throws
// PgError, so the C++ frames unwind normally and the boundary re-raises the original error
// unchanged (same SQLSTATE, message, detail). The lambda passed to guard must itself hold no C++
// objects with destructors: the longjmp skips its frame. After a PgError nothing may call into
// PostgreSQL again before the boundary re-raises it (the transaction is already failed), so
// destructors never call PostgreSQL.
//
// Frames written in PostgreSQL's own style (palloc'd data, no C++ objects with destructors) may
// call PostgreSQL unguarded: a longjmp over them skips nothing. The trigger hot paths are written
// that way on purpose.
#pragma once

#include "pg.hpp"  // first: postgres.h precedes every other header

#include "error_contract.hpp"

#include <csetjmp>
#include <exception>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace sg {

// errcodes: slotguard's SQLSTATEs as PostgreSQL error codes, made from the one table in
// common/error_contract.hpp (docs/errors.md).
namespace errcodes {
constexpr int from_sqlstate(std::string_view s) {
  return MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4]);
}
inline constexpr int kVersionConflict = from_sqlstate(errors::sqlstate::kVersionConflict);
inline constexpr int kNotFound = from_sqlstate(errors::sqlstate::kNotFound);
inline constexpr int kSoldOut = from_sqlstate(errors::sqlstate::kSoldOut);
inline constexpr int kHoldExpired = from_sqlstate(errors::sqlstate::kHoldExpired);
inline constexpr int kInvalidTransition = from_sqlstate(errors::sqlstate::kInvalidTransition);
}  // namespace errcodes

// Error is an error slotguard raises; the boundary turns it into ereport(ERROR).
class Error : public std::exception {
 public:
  Error(int sqlstate, std::string message, std::string detail = {}, std::string hint = {})
      : sqlstate_(sqlstate),
        message_(std::move(message)),
        detail_(std::move(detail)),
        hint_(std::move(hint)) {}
  const char* what() const noexcept override { return message_.c_str(); }
  int sqlstate() const { return sqlstate_; }
  const std::string& detail() const { return detail_; }
  const std::string& hint() const { return hint_; }

  // on names the table (and optionally a column and a constraint) the error is about. The boundary
  // reports them as the error's schema_name / table_name / column_name / constraint_name fields,
  // which drivers and ORMs expose (node-postgres err.table / err.constraint, Sequelize's
  // ExclusionConstraintError.constraint, JDBC ServerErrorMessage.getTable(), ...).
  Error& on(Oid relid, std::string column = {}, std::string constraint = {}) {
    relid_ = relid;
    column_ = std::move(column);
    constraint_ = std::move(constraint);
    return *this;
  }
  Oid relid() const { return relid_; }
  const std::string& column() const { return column_; }
  const std::string& constraint() const { return constraint_; }

 private:
  int sqlstate_;
  std::string message_, detail_, hint_;
  Oid relid_ = InvalidOid;
  std::string column_, constraint_;
};

// PgError is a PostgreSQL error caught by guard(); edata is palloc'd in the caller's context.
class PgError : public std::exception {
 public:
  explicit PgError(ErrorData* edata) : edata_(edata) {}
  const char* what() const noexcept override {
    return edata_ && edata_->message ? edata_->message : "PostgreSQL error";
  }
  ErrorData* edata() const { return edata_; }

 private:
  ErrorData* edata_;
};

namespace detail {
// rethrow_as_pg_error copies the current PostgreSQL error, flushes it and throws PgError.
[[noreturn]] void rethrow_as_pg_error(MemoryContext context);
}  // namespace detail

// guard runs f, a call into PostgreSQL; a PostgreSQL ERROR raised inside becomes PgError.
template <typename F>
auto guard(F&& f) -> decltype(f()) {
  using R = decltype(f());
  static_assert(std::is_void_v<R> || std::is_trivially_copyable_v<R>,
                "guard() returns only plain values: PostgreSQL data is palloc'd");
  sigjmp_buf target;
  sigjmp_buf* const saved_stack = PG_exception_stack;
  ErrorContextCallback* const saved_context = error_context_stack;
  const MemoryContext saved_memory = CurrentMemoryContext;
  if (sigsetjmp(target, 0) != 0) {
    PG_exception_stack = saved_stack;
    error_context_stack = saved_context;
    detail::rethrow_as_pg_error(saved_memory);
  }
  PG_exception_stack = &target;
  if constexpr (std::is_void_v<R>) {
    f();
    PG_exception_stack = saved_stack;
    error_context_stack = saved_context;
  } else {
    R result = f();
    PG_exception_stack = saved_stack;
    error_context_stack = saved_context;
    return result;
  }
}

// boundary runs a C++ function body and turns anything it throws into ereport(ERROR).
Datum boundary(Datum (*body)(FunctionCallInfo), FunctionCallInfo fcinfo);

}  // namespace sg

// SG_FUNCTION(name) { body } defines the SQL-callable C function `name` whose body runs in C++.
#define SG_FUNCTION(name)                            \
  static Datum name##_body(FunctionCallInfo fcinfo); \
  extern "C" {                                       \
  PG_FUNCTION_INFO_V1(name);                         \
  }                                                  \
  Datum name(PG_FUNCTION_ARGS) {                     \
    return sg::boundary(name##_body, fcinfo);        \
  }                                                  \
  static Datum name##_body([[maybe_unused]] FunctionCallInfo fcinfo)
