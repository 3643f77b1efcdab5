// database_errors: how a database error becomes the JSON-RPC error a client gets
// (docs/errors.md): its reason (the SQLSTATE table of common/error_contract.hpp), libpq's message
// split into message, DETAIL and HINT, and the facts slotguard's errors carry (a version
// conflict's table, key and versions; a one_per_holder conflict's holder; an overlap's rule and
// conflicting row; a constraint's name) as data fields, read back with the error contract's
// parsers. libpqxx 6 does not expose libpq's error fields, hence the split of the text. Pure C++,
// unit-tested without a database.
#pragma once

#include <string>

#include "protocol.hpp"

namespace sg::daemon {

// error_from_database maps a database error (SQLSTATE and libpq's message "ERROR:  ...\nDETAIL:
// ...\nHINT:  ...") to its RpcError.
RpcError error_from_database(const std::string& sqlstate, const std::string& message);

}  // namespace sg::daemon
