#!/usr/bin/env bash
# slotguardd over its socket: every method, every error reason, batches (all or nothing), the
# actor of a request, oversized and malformed input, unauthorized peers, max_clients.
source "$(dirname "$0")/lib.bash"

make_db
sql <<'SQL'
CREATE TABLE appointment (id int PRIMARY KEY, room int, starts_at timestamptz,
                          ends_at timestamptz, status text NOT NULL DEFAULT 'pending');
INSERT INTO appointment VALUES (1, 1, '2030-01-01 10:00', '2030-01-01 11:00', 'pending'),
                               (2, 2, '2030-01-01 10:00', '2030-01-01 11:00', 'pending');
SELECT slotguard.enable_versioning('appointment', audit => true);
SELECT slotguard.add_overlap_rule('appointment', 'one_per_room', '{room}', '{starts_at,ends_at}');
SELECT slotguard.add_transition_rule('appointment', 'status',
  '{"pending": ["confirmed", "cancelled"], "confirmed": ["cancelled"]}');
-- An application trigger that fails with its own SQLSTATE: reason "internal".
CREATE TABLE gadget (id int PRIMARY KEY, n int);
INSERT INTO gadget VALUES (1, 0);
SELECT slotguard.enable_versioning('gadget');
CREATE FUNCTION gadget_boom() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN RAISE EXCEPTION 'boom' USING ERRCODE = 'XX001'; END$$;
CREATE TRIGGER boom BEFORE UPDATE ON gadget FOR EACH ROW EXECUTE FUNCTION gadget_boom();
SQL
# One connection: every request runs on the same session, so a setting that outlived its
# request (the actor) would show.
POOL_SIZE=1 write_config "limits:
  max_request_bytes: 4096
  max_clients: 256"
start_daemon

log "health and stats"
a=$(call health)
expect_ok "$a"
[[ $a == *'"database":"ok"'* ]] || fail "health: $a"

log "create_slot, availability"
a=$(call create_slot '{"capacity": 3, "resource": "room-a", "hold_ttl": "1 hour"}')
expect_ok "$a"
slot=$(field "$a" result)
[[ -z $slot ]] && slot=$(sed -E 's/.*"result":([0-9]+).*/\1/' <<<"$a")
[[ $slot =~ ^[0-9]+$ ]] || fail "create_slot result: $a"
a=$(call availability "{\"slot_id\": $slot}")
[[ $a == *'"capacity":3'* && $a == *'"free":3'* ]] || fail "availability: $a"

log "create_slot with managed_by: the slot names the role that may act on it"
sql -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sg_daemon_tenant') THEN CREATE ROLE sg_daemon_tenant; END IF; END \$\$" >/dev/null
a=$(call create_slot '{"capacity": 1, "managed_by": "sg_daemon_tenant"}')
expect_ok "$a"
managed=$(sed -E 's/.*"result":([0-9]+).*/\1/' <<<"$a")
[[ $(sql -c "SELECT managed_by::text FROM slotguard.slots WHERE id = $managed") == sg_daemon_tenant ]] ||
  fail "create_slot did not record managed_by: $a"
a=$(call create_slot '{"capacity": 1, "managed_by": 5}')
expect_reason "$a" invalid_params

log "reserve (a hold), confirm, cancel; idempotency"
a=$(call reserve "{\"slot_id\": $slot, \"holder\": \"ann\", \"idempotency_key\": \"k1\"}")
expect_ok "$a"
[[ $a == *'"status":"pending"'* ]] || fail "reserve: $a"
b1=$(field "$a" id)
a=$(call reserve "{\"slot_id\": $slot, \"holder\": \"ann\", \"idempotency_key\": \"k1\"}")
[[ $(field "$a" id) == "$b1" ]] || fail "idempotent reserve gave another booking: $a"
a=$(call confirm "{\"booking_id\": $b1}")
[[ $a == *'"status":"confirmed"'* ]] || fail "confirm: $a"
a=$(call cancel "{\"booking_id\": $b1}")
[[ $a == *'"status":"cancelled"'* ]] || fail "cancel: $a"
a=$(call booking "{\"booking_id\": $b1}")
[[ $a == *"\"id\":$b1,"* && $a == *'"status":"cancelled"'* ]] || fail "booking: $a"
a=$(call booking '{"booking_id": 999999}')
expect_reason "$a" not_found

log "reserve_seats on numbered seats"
a=$(call create_slot '{"capacity": 2, "seat_labels": ["A1", "A2"]}')
seated=$(sed -E 's/.*"result":([0-9]+).*/\1/' <<<"$a")
a=$(call reserve_seats "{\"slot_id\": $seated, \"holder\": \"bo\", \"labels\": [\"A2\"], \"confirm\": true}")
[[ $a == *'"seat_labels":["A2"]'* && $a == *'"status":"confirmed"'* ]] || fail "reserve_seats: $a"

log "update_versioned with an actor; the audit row names it"
a=$(call update_versioned '{"tbl": "appointment", "key": 1, "expected_version": 0, "changes": {"status": "confirmed"}, "actor": "clerk-7", "actor_role": "clerk"}')
[[ $a == *'"version":1'* ]] || fail "update_versioned: $a"
[[ $(sql -c "SELECT actor || '/' || actor_role FROM slotguard.audit WHERE op = 'UPDATE' ORDER BY id DESC LIMIT 1") == clerk-7/clerk ]] ||
  fail "the audit row does not name the actor: $(sql -c 'TABLE slotguard.audit')"
a=$(call update_versioned '{"tbl": "appointment", "key": {"id": 2}, "expected_version": 0, "changes": {"room": 3}}')
expect_ok "$a"
[[ $(sql -c "SELECT actor || '/' || coalesce(actor_role, '-') FROM slotguard.audit WHERE op = 'UPDATE' ORDER BY id DESC LIMIT 1") == "uid:$(id -u)/-" ]] ||
  fail "default actor is not uid:$(id -u): $(sql -c 'SELECT actor, actor_role FROM slotguard.audit')"

log "find_conflicts"
a=$(call find_conflicts '{"tbl": "appointment", "candidate": {"id": 9, "room": 1, "starts_at": "2030-01-01 10:30", "ends_at": "2030-01-01 12:00"}}')
[[ $a == *'"rule_name":"one_per_room"'* ]] || fail "find_conflicts: $a"
a=$(call find_conflicts '{"tbl": "appointment", "candidate": {"id": 9, "room": 5, "starts_at": "2030-01-01 10:30", "ends_at": "2030-01-01 12:00"}}')
[[ $a == *'"result":[]'* ]] || fail "find_conflicts (none): $a"

log "expire_holds"
a=$(call expire_holds '{"max_rows": 10}')
[[ $a == *'"result":0'* ]] || fail "expire_holds: $a"
a=$(call stats)
[[ $a == *'"slotguard":['* && $a == *'"daemon":'* ]] || fail "stats: $a"

log "error reasons"
a=$(call update_versioned '{"tbl": "appointment", "key": 1, "expected_version": 0, "changes": {"status": "cancelled"}}')
expect_reason "$a" version_conflict
[[ $a == *'"sqlstate":"SG001"'* ]] || fail "no sqlstate: $a"
[[ $a == *'"current_version":1'* && $a == *'"expected_version":0'* ]] ||
  fail "version_conflict without its versions: $a"
[[ $a == *'"table":"public.appointment"'* && $a == *'"key":{"id":1}'* ]] ||
  fail "version_conflict without table and key: $a"
a=$(call confirm '{"booking_id": 999999}')
expect_reason "$a" not_found
a=$(call reserve "{\"slot_id\": $seated, \"holder\": \"cy\", \"seats\": 2}")
expect_reason "$a" sold_out
a=$(call reserve "{\"slot_id\": $slot, \"holder\": \"dee\", \"hold_ttl\": \"100 milliseconds\"}")
b2=$(field "$a" id)
sleep 0.3
a=$(call confirm "{\"booking_id\": $b2}")
expect_reason "$a" hold_expired
a=$(call confirm "{\"booking_id\": $b1}")
expect_reason "$a" invalid_transition
a=$(call update_versioned '{"tbl": "appointment", "key": 1, "expected_version": 1, "changes": {"status": "pending"}}')
expect_reason "$a" invalid_transition
a=$(call update_versioned '{"tbl": "appointment", "key": 2, "expected_version": 1, "changes": {"room": 1}}')
expect_reason "$a" overlap
[[ $a == *'"rule":"one_per_room"'* && $a == *'"conflicting_key":{"id":1}'* ]] ||
  fail "overlap without rule and conflicting key: $a"
a=$(call update_versioned '{"tbl": "appointment", "key": 2, "expected_version": 1, "changes": {"status": null}}')
expect_reason "$a" constraint_violation
[[ $a == *'"sqlstate":"23502"'* ]] || fail "constraint_violation without its sqlstate: $a"
a=$(call reserve "{\"slot_id\": $slot, \"holder\": \"ed\", \"seats\": 0}")
expect_reason "$a" invalid_params
a=$(call reserve '{"slot_id": "x", "holder": "ed"}')
expect_reason "$a" invalid_params
a=$(call reserve '{"holder": "ed"}')
expect_reason "$a" invalid_params
a=$(call reserve "{\"slot_id\": $slot, \"holder\": \"ed\", \"color\": \"red\"}")
expect_reason "$a" invalid_params
a=$(call update_versioned '{"tbl": "no_such_table", "key": 1, "expected_version": 0, "changes": {}}')
expect_reason "$a" invalid_params
a=$(call update_versioned '{"tbl": "appointment", "key": 1, "expected_version": 1, "changes": {"nope": 1}}')
expect_reason "$a" invalid_params
a=$(call no_such_method '{}')
[[ $a == *'"code":-32601'* ]] || fail "unknown method: $a"
# internal: a database error that is none of the above (an application trigger's own error).
a=$(call update_versioned '{"tbl": "gadget", "key": 1, "expected_version": 0, "changes": {"n": 2}}')
expect_reason "$a" internal
[[ $a == *'"sqlstate":"XX001"'* ]] || fail "internal without its sqlstate: $a"
kill -0 "$DPID" || fail "the daemon died"

log "slotguardctl: result on stdout, exit 0; reason on stderr, exit 1"
out=$(ctl availability slot_id="$slot") || fail "slotguardctl availability failed"
[[ $out == *'"capacity": 3'* ]] || fail "slotguardctl output: $out"
if err=$(ctl confirm booking_id=999999 2>&1); then fail "slotguardctl exit 0 on an error"; fi
[[ $err == *not_found* ]] || fail "slotguardctl error: $err"

log "batches: all or nothing"
before=$(sql -c "SELECT count(*) FROM slotguard.bookings WHERE slot_id = $slot")
a=$(rpc "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"reserve\",\"params\":{\"slot_id\":$slot,\"holder\":\"b1\"}},{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"reserve\",\"params\":{\"slot_id\":$slot,\"holder\":\"b2\",\"seats\":50}}]")
[[ $a == '['* ]] || fail "batch answer is not an array: $a"
expect_reason "$a" sold_out
[[ $a != *'"result":'* ]] || fail "a failed batch has a result: $a"
[[ $(sql -c "SELECT count(*) FROM slotguard.bookings WHERE slot_id = $slot") == "$before" ]] ||
  fail "a failed batch left bookings behind"
a=$(rpc "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"reserve\",\"params\":{\"slot_id\":$slot,\"holder\":\"b1\"}},{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"nope\"}]")
[[ $a != *'"result":'* ]] || fail "a batch with an invalid element ran: $a"
[[ $(sql -c "SELECT count(*) FROM slotguard.bookings WHERE slot_id = $slot") == "$before" ]] ||
  fail "a batch with an invalid element left bookings behind"
a=$(rpc "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"reserve\",\"params\":{\"slot_id\":$slot,\"holder\":\"b1\"}},{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"availability\",\"params\":{\"slot_id\":$slot}},{\"jsonrpc\":\"2.0\",\"method\":\"health\"}]")
[[ $a == '[{'*'"id":1'*'"status":"pending"'*'"id":2'*'"held":1'* ]] || fail "batch: $a"
[[ $(grep -o '"jsonrpc"' <<<"$a" | wc -l) == 2 ]] || fail "a notification in a batch was answered: $a"
a=$(rpc '[]')
expect_reason "$a" invalid_params

log "malformed and oversized input; the daemon stays up"
a=$(rpc '{"jsonrpc": "2.0", "id": 1, "method": ')
[[ $a == *'"code":-32700'* ]] || fail "malformed JSON: $a"
a=$(rpc '"just a string"')
[[ $a == *'"error":'* ]] || fail "a JSON string: $a"
a=$(rpc '{"jsonrpc": "1.0", "id": 1, "method": "health"}')
[[ $a == *'"error":'* ]] || fail "jsonrpc 1.0: $a"
a=$(printf '\x00\xff\xfe garbage\n' | "$LOAD" session "$SOCK" | sed -n 1p)
[[ $a == *'"error":'* ]] || fail "binary garbage: $a"
big=$(head -c 10000 /dev/zero | tr '\0' 'x')
a=$(rpc "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"reserve\",\"params\":{\"slot_id\":1,\"holder\":\"$big\"}}")
[[ $a == *'too large'* ]] || fail "oversized request: $a"
# A huge line without a newline: answered and closed, not buffered forever.
a=$({ head -c 3000000 /dev/zero || true; } | "$LOAD" session "$SOCK" | sed -n 1p)
[[ $a == *'too large'* ]] || fail "oversized unterminated input: $a"
# Several requests on one connection, pipelined.
a=$(printf '%s\n%s\n' '{"jsonrpc":"2.0","id":"a","method":"health"}' \
  '{"jsonrpc":"2.0","id":"b","method":"health"}' | "$LOAD" session "$SOCK")
[[ $(grep -c '"result"' <<<"$a") == 2 ]] || fail "pipelined requests: $a"
kill -0 "$DPID" || fail "the daemon died"
expect_ok "$(call health)"

log "unauthorized: allowed_uids without our uid"
stop_daemon || fail "the daemon did not exit 0"
write_config "access:
  allowed_uids: [$(($(id -u) + 4242))]"
: >"$DLOG"
"$SGD" --config "$CONF" 2>>"$DLOG" &
DPID=$!
for _ in $(seq 1 50); do [[ -S $SOCK ]] && break; sleep 0.1; done
a=$(call health)
expect_reason "$a" unauthorized
a=$(call reserve "{\"slot_id\": $slot, \"holder\": \"mallory\"}")
expect_reason "$a" unauthorized
stop_daemon || fail "the daemon did not exit 0"

log "max_clients: one more is answered unavailable"
write_config "limits:
  max_clients: 2"
start_daemon
exec 7> >("$LOAD" session "$SOCK" >/dev/null)
exec 8> >("$LOAD" session "$SOCK" >/dev/null)
sleep 0.3
a=$(call health)
expect_reason "$a" unavailable
[[ $a == *max_clients* ]] || fail "max_clients: $a"
exec 7>&- 8>&-
sleep 0.3
expect_ok "$(call health)"
stop_daemon || fail "the daemon did not exit 0"

log "unauthorized: the database refuses the daemon's role (42501), with its SQLSTATE"
role=sgd_nopriv_$$
drop_role() {
  psql -X -q -d "$DB" -c "DROP OWNED BY $role CASCADE" >/dev/null 2>&1 || true
  psql -X -q -d postgres -c "DROP ROLE IF EXISTS $role" >/dev/null 2>&1 || true
}
CLEANUP_HOOK=drop_role
sql -c "CREATE ROLE $role LOGIN" -c "GRANT USAGE ON SCHEMA slotguard TO $role"
PGUSER=$role write_config
start_daemon
a=$(call update_versioned '{"tbl": "appointment", "key": 1, "expected_version": 1, "changes": {"status": "cancelled"}}')
expect_reason "$a" unauthorized
[[ $a == *'"sqlstate":"42501"'* ]] || fail "unauthorized without its sqlstate: $a"
a=$(call availability "{\"slot_id\": $slot}")
expect_ok "$a"
stop_daemon || fail "the daemon did not exit 0"
