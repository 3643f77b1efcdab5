#!/usr/bin/env bash
# Deeply nested JSON: a request nesting 300,000 arrays or objects — in
# params, in id, in method, as a whole batch, unterminated, from a peer that fails the access
# check — is answered with invalid_params (-32600) and the daemon keeps serving; nesting within
# limits.max_json_depth still works, and the limit is a configuration key.
source "$(dirname "$0")/lib.bash"

make_db
write_config "limits:
  max_request_bytes: 2097152"
start_daemon

# nest N OPEN CLOSE: N levels of OPEN ... CLOSE around 0 (perl: fast, and in every base system).
nest() { perl -e 'my ($n, $o, $c) = @ARGV; print $o x $n, "0", $c x $n' "$@"; }
deep=$(nest 300000 '[' ']')
deepobj=$(nest 300000 '{"a":' '}')
LINES=$WORK/lines
mkdir -p "$LINES"
printf '{"jsonrpc":"2.0","id":1,"method":"health","params":{"x":%s}}\n' "$deep" >"$LINES/params"
printf '{"jsonrpc":"2.0","id":1,"method":"update_versioned","params":{"tbl":"t","key":1,"expected_version":1,"changes":%s}}\n' "$deepobj" >"$LINES/jsonb"
printf '{"jsonrpc":"2.0","id":%s,"method":"health"}\n' "$deep" >"$LINES/id"
printf '{"jsonrpc":"2.0","id":1,"method":%s}\n' "$deep" >"$LINES/method"
printf '{"jsonrpc":"2.0","id":1,"method":"health","params":%s}\n' "$deepobj" >"$LINES/params_object"
printf '%s\n' "$deep" >"$LINES/batch"
printf '[{"jsonrpc":"2.0","id":1,"method":"health"},%s]\n' "$deep" >"$LINES/batch_element"
perl -e 'print "[" x 300000, "\n"' >"$LINES/unterminated"
printf '{"jsonrpc":"2.0","id":"%s","method":"health"}\n' "$(nest 300000 '[' ']')" >"$LINES/in_string"

# send FILE: the answer line to FILE's content sent on a fresh connection.
send() { "$LOAD" session "$SOCK" <"$1" | sed -n 1p; }

for name in params jsonb id method params_object batch batch_element unterminated; do
  log "300,000 levels: $name"
  a=$(send "$LINES/$name")
  kill -0 "$DPID" 2>/dev/null || fail "slotguardd died on a deeply nested request ($name)"
  [[ $a == *'"error":'* ]] || fail "$name: no error answer: ${a:0:300}"
  [[ $a == *'"code":-32600'* && $a == *max_json_depth* ]] || fail "$name: not invalid_request: ${a:0:300}"
  expect_reason "$a" invalid_params
  expect_ok "$(call health)"
done

log "brackets inside a string are not nesting"
a=$(send "$LINES/in_string")
expect_ok "$a"

log "nesting within the limit reaches the database; one level more is refused"
sql -c "CREATE TABLE t (id int PRIMARY KEY, doc jsonb, n int)" -c "INSERT INTO t VALUES (1, NULL, 0)" \
  -c "SELECT slotguard.enable_versioning('t')" >/dev/null
v=$(sql -c "SELECT version FROM t")
# request object (1) > params (2) > changes (3) > 61 levels in doc: 64, the default limit.
ok_doc=$(nest 61 '[' ']')
a=$(call update_versioned "{\"tbl\":\"t\",\"key\":1,\"expected_version\":$v,\"changes\":{\"doc\":$ok_doc}}")
expect_ok "$a"
[[ $(sql -c "SELECT jsonb_typeof(doc) FROM t") == array ]] || fail "the nested document was not stored"
too_deep=$(nest 62 '[' ']')
a=$(call update_versioned "{\"tbl\":\"t\",\"key\":1,\"expected_version\":$((v + 1)),\"changes\":{\"doc\":$too_deep}}")
expect_reason "$a" invalid_params
[[ $a == *'"code":-32600'* && $a == *max_json_depth* ]] || fail "over the limit: $a"

log "a deep result from the database does not crash the answer"
# find_conflicts and update_versioned return rows: a row may hold a document nested deeper than
# any request may be (SQL builds it), and the answer must still be written or refused.
sql -c "UPDATE t SET doc = (SELECT ('$(nest 5000 '[' ']')')::jsonb)" >/dev/null
a=$(call update_versioned "{\"tbl\":\"t\",\"key\":1,\"expected_version\":$(sql -c "SELECT version FROM t"),\"changes\":{\"n\":1}}")
[[ $a == *'"error":'*'deeper than 2000 levels'* ]] || fail "deep result: ${a:0:300}"
kill -0 "$DPID" 2>/dev/null || fail "slotguardd died writing a deep result"
expect_ok "$(call health)"

log "limits.max_json_depth is configurable (SIGHUP)"
write_config "limits:
  max_request_bytes: 2097152
  max_json_depth: 4"
kill -HUP "$DPID"
sleep 0.5
a=$(call health '{"x":[[[1]]]}')
expect_reason "$a" invalid_params
[[ $a == *'"code":-32600'* ]] || fail "max_json_depth 4: $a"
a=$(call health '{"x":[[1]]}')
[[ $a == *'"code":-32602'* ]] || fail "max_json_depth 4, depth 4: $a"
stop_daemon || fail "the daemon did not exit 0"

log "a peer that fails the access check sends deep JSON"
write_config "access:
  allowed_uids: [$(($(id -u) + 4242))]
limits:
  max_request_bytes: 2097152"
: >"$DLOG"
"$SGD" --config "$CONF" 2>>"$DLOG" &
DPID=$!
for _ in $(seq 1 50); do [[ -S $SOCK ]] && break; sleep 0.1; done
for name in id params batch; do
  a=$(send "$LINES/$name")
  kill -0 "$DPID" 2>/dev/null || fail "slotguardd died on deep JSON from an unauthorized peer ($name)"
  expect_reason "$a" unauthorized
done
a=$(call health)
expect_reason "$a" unauthorized
stop_daemon || fail "the daemon did not exit 0"
