#!/usr/bin/env bash
# Behind PgBouncer (Debian's 1.18) in transaction pooling mode, where consecutive transactions of
# one client run on different server connections and one server connection serves many clients:
#   1. the actor: nine clients share a pool of two server connections; four set the actor with
#      SET LOCAL slotguard.actor, four with set_config('slotguard.actor', ..., true) (the two
#      documented ways), one sets none. Every audit row names the actor of the client that wrote
#      it, or none for the one that set none: no actor leaks between clients;
#   2. slotguardd with database.pool_mode: transaction (unnamed statements, settings per
#      transaction) through PgBouncer: reservations, confirmations and sold-out answers are right
#      from 4 workers over 1 server connection, and the daemon's statement_timeout does not leak
#      into the server connection other clients then get.
source "$(dirname "$0")/lib.bash"
command -v pgbouncer >/dev/null || fail "pgbouncer is not installed (make deps)"

make_db
BDIR=$WORK/bouncer
BPORT=$((PGPORT + 23))
mkdir -p "$BDIR"
printf '"%s" ""\n' "$PGUSER" >"$BDIR/users.txt"
cat >"$BDIR/pgbouncer.ini" <<INI
[databases]
$DB = host=$PGHOST port=$PGPORT dbname=$DB
[pgbouncer]
listen_addr =
listen_port = $BPORT
unix_socket_dir = $BDIR
auth_type = trust
auth_file = $BDIR/users.txt
pool_mode = transaction
default_pool_size = 2
max_client_conn = 100
ignore_startup_parameters = extra_float_digits,options
logfile = $BDIR/pgbouncer.log
pidfile = $BDIR/pgbouncer.pid
INI
chown -R postgres "$BDIR"
BPID=
stop_bouncer() { [[ -n $BPID ]] && kill -TERM "$BPID" 2>/dev/null && wait "$BPID" 2>/dev/null; true; }
CLEANUP_HOOK=stop_bouncer
setpriv --reuid=postgres --regid=postgres --init-groups pgbouncer "$BDIR/pgbouncer.ini" \
  >>"$BDIR/stdout.log" 2>&1 &
BPID=$!
# bsql: psql through PgBouncer.
bsql() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$BDIR" -p "$BPORT" -d "$DB" "$@"; }
for _ in $(seq 1 100); do bsql -c "SELECT 1" >/dev/null 2>&1 && break; sleep 0.1; done
bsql -c "SELECT 1" >/dev/null || fail "pgbouncer does not answer: $(tail -5 "$BDIR/pgbouncer.log")"

log "1. actor: 9 clients, 2 server connections, 40 transactions each"
sql >/dev/null <<'SQL'
CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, n int NOT NULL DEFAULT 0,
  version bigint NOT NULL DEFAULT 1);
SELECT slotguard.enable_versioning('accounts', audit => true);
INSERT INTO accounts (id, owner) SELECT i, 'client' || i FROM generate_series(1, 9) i;
SQL
pids=()
for i in $(seq 1 9); do
  {
    for _ in $(seq 1 40); do
      echo "BEGIN;"
      if ((i <= 4)); then
        echo "SET LOCAL slotguard.actor = 'client$i';"
      elif ((i <= 8)); then
        echo "SELECT set_config('slotguard.actor', 'client$i', true) \\g /dev/null"
      fi
      echo "UPDATE accounts SET n = n + 1 WHERE id = $i;"
      echo "COMMIT;"
    done
  } | bsql >/dev/null &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a client through pgbouncer failed"; done
bad=$(sql -c "SELECT row_key->>'id', coalesce(actor, '<none>'), count(*) FROM slotguard.audit
  WHERE tbl = 'public.accounts' AND op = 'UPDATE'
    AND actor IS DISTINCT FROM (CASE WHEN (row_key->>'id')::int <= 8
                                     THEN 'client' || (row_key->>'id') END)
  GROUP BY 1, 2")
[[ -z $bad ]] || fail "audit rows with another client's actor (row, actor, count): $bad"
[[ $(sql -c "SELECT count(*) FROM slotguard.audit WHERE op = 'UPDATE'") == 360 ]] ||
  fail "expected 360 audit rows, got $(sql -c "SELECT count(*) FROM slotguard.audit WHERE op = 'UPDATE'")"
[[ $(bsql -c "SHOW slotguard.actor") == "" ]] || fail "an actor is left on a pooled connection"

log "2. slotguardd through pgbouncer (database.pool_mode: transaction)"
cat >"$CONF" <<YAML
database:
  conninfo: "host=$BDIR port=$BPORT user=$PGUSER dbname=$DB"
  pool_size: 4
  pool_mode: transaction
  statement_timeout: 7s
socket:
  path: $SOCK
  mode: "0600"
  group: ""
sweep:
  interval: 1s
log:
  level: info
YAML
start_daemon
slot=$(sql -c "SELECT slotguard.create_slot(40, now(), now() + interval '1 hour', 'gig')")
pids=()
for c in $(seq 1 8); do
  (
    for k in $(seq 1 5); do
      a=$(call reserve "{\"slot_id\":$slot,\"holder\":\"h$c-$k\",\"seats\":1,\"idempotency_key\":\"k$c-$k\"}")
      expect_ok "$a"
      b=$(field "$a" id)
      expect_ok "$(call confirm "{\"booking_id\":$b}")"
    done
  ) &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a socket client failed through pgbouncer"; done
expect_reason "$(call reserve "{\"slot_id\":$slot,\"holder\":\"late\",\"seats\":1}")" sold_out
a=$(call reserve "{\"slot_id\":$slot,\"holder\":\"h1-1\",\"seats\":1,\"idempotency_key\":\"k1-1\"}")
expect_ok "$a"
[[ $(sql -c "SELECT count(*) FROM slotguard.bookings WHERE slot_id = $slot AND status = 'confirmed'") == 40 ]] ||
  fail "expected 40 confirmed bookings: $(sql -c "SELECT status, count(*) FROM slotguard.bookings GROUP BY 1")"
for _ in 1 2 3 4; do
  t=$(bsql -c "SHOW statement_timeout")
  [[ $t == 0 ]] || fail "the daemon's statement_timeout leaked into a pooled connection: $t"
done
grep -qi "prepared statement" "$DLOG" && fail "prepared statement errors in the daemon log"
stop_daemon || fail "slotguardd did not stop cleanly"
