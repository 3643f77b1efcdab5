// pg_session: a worker's session with PostgreSQL through libpq itself, the Database of
// database.pool_mode session. Statements are prepared by name once per connection. Besides the
// one-statement-at-a-time transactions of the Database interface, it pipelines (libpq's
// pipeline mode): the single-statement requests of several clients that one worker took in one
// turn are sent back to back, each followed by its own synchronisation point — so each runs in
// its own implicit transaction and an error ends that request alone — and their outcomes are
// read in order. One round trip and one wake-up of the worker (and of the server's backend)
// serve them all. Failures are thrown as libpqxx's exceptions, as database.hpp says, so the
// dispatcher handles them as it handles libpqxx's. Runs on its worker's thread.
#pragma once

#include <memory>

#include "database.hpp"

namespace sg::daemon {

std::unique_ptr<Database> libpq_database(DaemonState& state);

}  // namespace sg::daemon
