// database_errors: how a database error becomes the JSON-RPC error a client gets
// (docs/errors.md): its reason (per the SQLSTATE table of common/), libpq's message split into
// message, DETAIL and HINT, and the facts slotguard's errors carry (a version conflict's table,
// key and versions; an overlap's rule and conflicting row; a constraint's name) as data fields.
// Pure C++, unit-tested without a database.
#pragma once

#include <string>

#include "protocol.hpp"

namespace sg::daemon {

// error_from_database maps a database error (SQLSTATE and libpq's message "ERROR:  ...\nDETAIL:
// ...\nHINT:  ...") to its RpcError.
RpcError error_from_database(const std::string& sqlstate, const std::string& message);

}  // namespace sg::daemon
