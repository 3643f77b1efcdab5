// module: the library's entry point (_PG_init, run when the library is loaded: at server start
// when preloaded, else at a backend's first call), its settings, and small SQL helpers.
#include "boundary.hpp"
#include "stats.hpp"

#include <new>
#include <stdexcept>

extern "C" {
PG_MODULE_MAGIC;
void _PG_init(void);
}

namespace {

char* actor_setting = nullptr;
char* actor_role_setting = nullptr;

// int4_from_text runs int4in on text under guard(): a PostgreSQL error becomes sg::PgError.
int32 int4_from_text(const char* text) {
  return sg::guard(
      [&] { return DatumGetInt32(DirectFunctionCall1(int4in, CStringGetDatum(text))); });
}

}  // namespace

// _PG_init defines slotguard.* settings and, when preloaded, the shared-memory counters.
void _PG_init(void) {
  DefineCustomStringVariable("slotguard.actor",
                             "Application user recorded in slotguard.audit for this session or "
                             "transaction (SET LOCAL per request).",
                             nullptr, &actor_setting, nullptr, PGC_USERSET, 0, nullptr, nullptr,
                             nullptr);
  DefineCustomStringVariable("slotguard.actor_role",
                             "Application role used by transition rules' by_role and recorded in "
                             "slotguard.audit; current_user when unset.",
                             nullptr, &actor_role_setting, nullptr, PGC_USERSET, 0, nullptr,
                             nullptr, nullptr);
  sg::stats::define_settings();
  MarkGUCPrefixReserved("slotguard");
  if (process_shared_preload_libraries_in_progress) sg::stats::install_hooks();
}

// slotguard._tgargs(tgargs bytea) splits pg_trigger.tgargs into its arguments.
SG_FUNCTION(sg_tgargs) {
  bytea* raw = PG_GETARG_BYTEA_PP(0);
  const char* p = VARDATA_ANY(raw);
  const char* end = p + VARSIZE_ANY_EXHDR(raw);
  ArrayBuildState* astate = initArrayResult(TEXTOID, CurrentMemoryContext, false);
  while (p < end) {
    const char* nul = static_cast<const char*>(memchr(p, '\0', end - p));
    const int len = nul ? static_cast<int>(nul - p) : static_cast<int>(end - p);
    astate = accumArrayResult(astate, PointerGetDatum(cstring_to_text_with_len(p, len)), false,
                              TEXTOID, CurrentMemoryContext);
    p += len + 1;
  }
  PG_RETURN_DATUM(makeArrayResult(astate, CurrentMemoryContext));
}

// slotguard._boundary_selftest(what) exercises the C++/PostgreSQL boundary for the test suite:
// 'error' throws sg::Error (22023), 'std' a std::runtime_error (XX000), 'oom' std::bad_alloc
// (53200), 'pg' raises a PostgreSQL error (a failed cast, 22P02) under a C++ frame holding
// std::string objects, guarded; 'ok' returns normally.
SG_FUNCTION(sg_boundary_selftest) {
  if (PG_ARGISNULL(0)) throw sg::Error(ERRCODE_INVALID_PARAMETER_VALUE, "what must not be NULL");
  const std::string what = text_to_cstring(PG_GETARG_TEXT_PP(0));
  const std::string held = "a C++ object alive while PostgreSQL raises: " + what;
  if (what == "error")
    throw sg::Error(ERRCODE_INVALID_PARAMETER_VALUE, "selftest error", "Thrown as sg::Error.",
                    "This is a test.");
  if (what == "std") throw std::runtime_error("selftest std::runtime_error");
  if (what == "oom") throw std::bad_alloc();
  if (what == "pg") (void)int4_from_text("not a number");
  if (what != "ok" && what != "pg")
    throw sg::Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown selftest \"" + what + "\"");
  PG_RETURN_TEXT_P(cstring_to_text(held.c_str()));
}
