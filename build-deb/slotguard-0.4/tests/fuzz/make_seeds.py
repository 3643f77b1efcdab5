#!/usr/bin/env python3
"""make_seeds.py: writes the seed corpora tests/fuzz/request/ and tests/fuzz/config/.

Run it after changing the seeds below (the files it writes are committed; the fuzzers add their
own finds to a working copy under build-asan/, not here).

A request seed is the request line, optionally followed by a newline and the fake database's
script (see request_fuzzer.cpp). The script is read from its end, one byte per decision:
ensure/closed_by_server take value % 8 (7: fail), a statement's outcome takes value % 16
(0-4 canned result, 5 NULL, 6 the script's text, 7-8 canned error + 1 byte choosing it,
9 error with the script's text, 10 lost connection, 11 deadlock, 12 serialization failure,
13 outcome unknown / COMMIT in doubt, 14 permission denied without SQLSTATE, 15 other exception).
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def req(method, params=None, id=1, **extra):
    r = {"jsonrpc": "2.0", "method": method}
    if id is not None:
        r["id"] = id
    if params is not None:
        r["params"] = params
    r.update(extra)
    return r


def line(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def script(*decisions):
    """decisions in the order the fake makes them; stored reversed (read from the end)."""
    return bytes(reversed(decisions))


# canned error indexes (kErrors in request_fuzzer.cpp)
E = {"SG001": 0, "SG001u": 1, "SG002": 2, "SG003": 3, "SG003h": 4, "SG004": 5, "SG005": 6,
     "23P01": 7, "23P01k": 8, "23514": 9, "23505": 10, "22023": 11, "22P02": 12, "42501": 13,
     "42602": 14, "42P01": 15, "42703": 16, "40001": 17, "40P01": 18, "57P01": 19, "57014": 20,
     "08006": 21, "XX001": 22, "P0001": 23, "none": 24}
OK, NULL, TEXT, ERR, ERRTEXT, LOST, DEADLOCK, SERIAL, UNKNOWN, PRIV, OTHER = 0, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15
FAIL = 7  # ensure / closed_by_server

reserve = {"slot_id": 3, "holder": "ann", "seats": 2, "hold_ttl": "2 minutes",
           "idempotency_key": "k-1", "confirm": False}
requests = {
    "health": line(req("health")),
    "stats": line(req("stats", {})),
    "reserve": line(req("reserve", reserve)),
    "reserve_minimal": line(req("reserve", {"slot_id": "3", "holder": "bo"}, id="a-1")),
    "reserve_notification": line(req("reserve", {"slot_id": 3, "holder": "ann"}, id=None)),
    "reserve_actor": line(req("reserve", {"slot_id": 3, "holder": "ann", "seats": 1,
                                          "hold_ttl": 90, "actor": "web-42",
                                          "actor_role": "clerk"})),
    "reserve_seats": line(req("reserve_seats", {"slot_id": 4, "holder": "cy",
                                                "labels": ["A1", "A2", "B\"7\\"],
                                                "confirm": True, "idempotency_key": "s-1"})),
    "confirm": line(req("confirm", {"booking_id": 12}, id=2)),
    "cancel": line(req("cancel", {"booking_id": 12}, id=3)),
    "booking": line(req("booking", {"booking_id": 9223372036854775807}, id=4)),
    "availability": line(req("availability", {"slot_id": 3}, id=5)),
    "create_slot": line(req("create_slot", {"capacity": 100000, "starts_at": "2030-01-01 10:00",
                                            "ends_at": "2030-01-01 11:00", "resource": "room-a",
                                            "hold_ttl": "15 minutes",
                                            "seat_labels": ["1", 2, "3"],
                                            "one_per_holder": "true"})),
    "update_versioned": line(req("update_versioned", {"tbl": "public.appointment", "key": {"id": 1},
                                                      "expected_version": 0,
                                                      "changes": {"status": "confirmed"},
                                                      "actor": "clerk-7"})),
    "update_versioned_uuid": line(req("update_versioned", {
        "tbl": "\"Odd Name\"", "key": 1,
        "expected_version": "00000000-0000-0000-0000-000000000001",
        "changes": {"n": [1, {"a": None}]}})),
    "find_conflicts": line(req("find_conflicts", {
        "tbl": "appointment",
        "candidate": {"id": 9, "room": 1, "starts_at": "2030-01-01 10:30",
                      "ends_at": "2030-01-01 12:00"},
        "ignore_key": {"id": 9}})),
    "expire_holds": line(req("expire_holds", {"max_rows": 1000}, id=1.5)),
    "expire_holds_noparams": line(req("expire_holds", None, id=None)),
    "batch": line([req("create_slot", {"capacity": 2}, id=1),
                   req("reserve", {"slot_id": 1, "holder": "ann"}, id=2),
                   req("confirm", {"booking_id": 1}, id=3)]),
    "batch_stats_health": line([req("stats", id="s"), req("health", id="h"),
                                req("availability", {"slot_id": 1}, id=None)]),
    "batch_actor_roles": line([req("update_versioned", {"tbl": "t", "key": 1,
                                                        "expected_version": 1,
                                                        "changes": {}, "actor": "a",
                                                        "actor_role": "r"}, id=1),
                               req("cancel", {"booking_id": 2, "actor": None}, id=2)]),
    "batch_invalid_element": line([req("reserve", {"slot_id": 1, "holder": "ann"}, id=1), 42,
                                   req("nope", id=3)]),
    "batch_notifications": line([req("reserve", {"slot_id": 1, "holder": "x"}, id=None),
                                 req("expire_holds", id=None)]),
    "batch_empty": b"[]",
    "batch_nested": b'[[{"jsonrpc":"2.0","id":1,"method":"health"}]]',
    "not_json": b'{"jsonrpc":"2.0","id":1,"method":',
    "not_object": b"42",
    "string": b'"reserve"',
    "wrong_version": line(req("health", jsonrpc="1.0")),
    "no_version": b'{"id":1,"method":"health"}',
    "method_not_string": line(req(7)),
    "unknown_method": line(req("drop_everything", {})),
    "unknown_param": line(req("confirm", {"booking_id": 1, "bookingid": 2})),
    "missing_param": line(req("reserve", {"holder": "ann"})),
    "wrong_types": line(req("reserve", {"slot_id": 1.5, "holder": ["x"], "seats": "2"})),
    "int_range": line(req("reserve", {"slot_id": 1, "holder": "a", "seats": 2147483648})),
    "bigint_string": line(req("booking", {"booking_id": "-9223372036854775808"})),
    "bad_id": line(req("health", id={"x": 1})),
    "params_array": line(req("confirm", [1])),
    "actor_not_string": line(req("cancel", {"booking_id": 1, "actor": 5})),
    "unicode": line(req("reserve", {"slot_id": 1, "holder": "Zoë 🎟 \u0000 \\"}, id="ü")),
    "whitespace": b'  { "jsonrpc" : "2.0" , "id" : 1 , "method" : "health" }  \r',
    "duplicate_keys": b'{"jsonrpc":"2.0","id":1,"id":2,"method":"health","method":"stats"}',
    "deep_params": b'{"jsonrpc":"2.0","id":1,"method":"reserve","params":{"slot_id":1,'
                   b'"holder":"a","x":' + b"[" * 100 + b"]" * 100 + b"}}",
    "deep_id": b'{"jsonrpc":"2.0","method":"health","id":' + b"[" * 70 + b"]" * 70 + b"}",
    "deep_in_string": line(req("reserve", {"slot_id": 1, "holder": "[" * 100 + "{\\\"" * 30})),
    "nul_byte": b"3333\x00" + b'{"jsonrpc":"2.0","id":1,"method":"health"}',
    "batch_too_long": b"[" + b",".join([b"1"] * 1001) + b"]",
    "batch_at_limit": line([req("health", id=i) for i in range(60)]),
}

scripted = {
    # single calls: ensure, closed_by_server, the statement, [choice]
    "reserve_sold_out": (requests["reserve"], script(OK, OK, ERR, E["SG003"])),
    "reserve_one_per_holder": (requests["reserve_minimal"], script(OK, OK, ERR, E["SG003h"])),
    "reserve_retry_then_ok": (requests["reserve"], script(OK, OK, SERIAL, OK, OK, OK, 0)),
    "reserve_deadlock_3x": (requests["reserve"], script(OK, OK, DEADLOCK, OK, OK, DEADLOCK, OK,
                                                        OK, DEADLOCK)),
    "reserve_lost_no_key": (requests["reserve_minimal"], script(OK, OK, LOST)),
    "reserve_lost_key": (requests["reserve"], script(OK, OK, LOST, OK, OK, 1)),
    "reserve_unknown_outcome": (requests["reserve_minimal"], script(OK, OK, UNKNOWN)),
    "reserve_server_closed": (requests["reserve"], script(OK, FAIL, OK, OK, 1)),
    "confirm_expired": (requests["confirm"], script(OK, OK, ERR, E["SG004"])),
    "booking_not_found": (requests["booking"], script(OK, OK, ERR, E["SG002"])),
    "update_conflict": (requests["update_versioned"], script(OK, OK, ERR, E["SG001"])),
    "update_conflict_uuid": (requests["update_versioned_uuid"], script(OK, OK, ERR, E["SG001u"])),
    "update_transition": (requests["update_versioned"], script(OK, OK, ERR, E["SG005"])),
    "update_check": (requests["update_versioned"], script(OK, OK, ERR, E["23514"])),
    "update_bad_table": (requests["update_versioned_uuid"], script(OK, OK, ERR, E["42P01"])),
    "find_overlap": (requests["find_conflicts"], script(OK, OK, ERR, E["23P01k"])),
    "find_garbage_result": (requests["find_conflicts"],
                            b'[{"rule_name": 1, "x": [[[[[]]]]]}' + script(OK, OK, TEXT)),
    "create_invalid": (requests["create_slot"], script(OK, OK, ERR, E["22023"])),
    "create_error_text": (requests["create_slot"],
                          b"ERROR:  bad\nDETAIL:  Table x, key {: current version 1; the table "
                          b"requires every UPDATE\nHINT:  h\xc3" + script(OK, OK, ERRTEXT, E["SG001"])),
    "availability_null": (requests["availability"], script(OK, OK, NULL)),
    "find_deep_result": (requests["find_conflicts"],
                         b"[" * 2100 + b"]" * 2100 + script(OK, OK, TEXT)),
    "cancel_privilege": (requests["cancel"], script(OK, OK, PRIV)),
    "cancel_admin_shutdown": (requests["cancel"], script(OK, OK, ERR, E["57P01"], OK, OK, 0)),
    "expire_other_exception": (requests["expire_holds"], b"boom" + script(OK, OK, OTHER)),
    "health_down": (requests["health"], b"refused" + script(FAIL)),
    "stats_error": (requests["stats"], script(OK, ERR, E["42501"])),
    "reserve_db_down": (requests["reserve"], b"no route" + script(FAIL)),
    # batches: ensure, then per call the actor statement and the call, then COMMIT
    "batch_rolled_back": (requests["batch"], script(OK, OK, OK, OK, ERR, E["SG003"])),
    "batch_commit_in_doubt": (requests["batch"], script(OK, OK, OK, OK, OK, 0, OK, OK, 1, UNKNOWN)),
    "batch_commit_serialization": (requests["batch"],
                                   script(OK, OK, OK, OK, OK, 0, OK, OK, 1, ERR, E["40001"])),
    "batch_lost_midway": (requests["batch"], script(OK, OK, OK, LOST, OK, OK, OK, OK, OK, 0, OK,
                                                     OK, 1, OK)),
    "batch_stats_health_error": (requests["batch_stats_health"], script(OK, ERR, E["XX001"])),
}

CONFIGS = {
    "empty": b"",
    "comment_only": b"# nothing\n",
    "readme_small": b"""database:
  conninfo: "host=/var/run/postgresql port=5432 dbname=clinic user=slotguardd"
socket:
  path: /run/slotguard/slotguardd.sock
  group: slotguard          # the group whose members may connect ("" keeps the daemon's own)
""",
    "every_key": open(os.path.join(HERE, "..", "..", "packaging", "slotguardd.yaml"), "rb").read(),
    "test_config": b"""database:
  conninfo: "host=/tmp port=5432 user=postgres dbname=sgd_x"
  pool_size: 1
socket:
  path: /tmp/sgdt.x/sgd.sock
  mode: "0600"
  group: ""
sweep:
  interval: 500ms
log:
  level: debug
limits:
  max_request_bytes: 4096
  max_clients: 256
""",
    "access_names": b"""access:
  allowed_uids: [root, 0, 65534, nobody]
  allowed_groups: [root, 0]
""",
    "access_block": b"access:\n  allowed_uids:\n    - root\n    - 1000\n  allowed_groups: ~\n",
    "flow_style": b"{database: {pool_size: 8}, sweep: {enabled: off, batch: 1}, retry: {multiplier: 1.5}}\n",
    "durations": b"sweep:\n  interval: 1h\nlimits:\n  idle_timeout: 0\ndatabase:\n  connect_timeout: 2m\n",
    "retry": b"retry:\n  max_attempts: 100\n  base_delay_ms: 0\n  multiplier: 100\n  max_delay_ms: 600000\n",
    "log_levels": b"log:\n  level: warn\n",
    "unknown_key": b"database:\n  pool_size: 4\nsweep:\n  enabled: true\n  intervall: 30s\n",
    "unknown_section": b"databse:\n  pool_size: 4\n",
    "bad_duration": b"sweep:\n  interval: soon\n",
    "bad_mode": b"socket:\n  mode: 0999\n",
    "bad_path": b"socket:\n  path: relative/sock\n",
    "long_path": b"socket:\n  path: /" + b"x" * 120 + b"\n",
    "bad_int": b"database:\n  pool_size: 4x\n",
    "int_range": b"database:\n  pool_size: 99999999999999999999\n",
    "bad_bool": b"sweep:\n  enabled: maybe\n",
    "bad_multiplier": b"retry:\n  multiplier: nan\n",
    "delay_order": b"retry:\n  base_delay_ms: 500\n  max_delay_ms: 100\n",
    "not_mapping": b"- database\n- socket\n",
    "section_scalar": b"database: 5\n",
    "value_sequence": b"database:\n  conninfo: [a, b]\n",
    "value_map": b"log:\n  level: {a: 1}\n",
    "no_such_user": b"access:\n  allowed_uids: [no-such-user-xyz]\n",
    "uid_range": b"access:\n  allowed_uids: [4294967295]\n",
    "uid_huge": b"access:\n  allowed_uids: [" + b"4" + b"2" * 80 + b"94967295]\n",
    "anchors": b"x: &a\n  pool_size: 2\ndatabase: *a\n",
    "merge_key": b"database:\n  <<: {pool_size: 2}\n",
    "tags": b"database:\n  pool_size: !!str 4\n  conninfo: !custom x\n",
    "multi_doc": b"database:\n  pool_size: 2\n---\nsweep:\n  batch: 5\n",
    "bad_yaml": b"database:\n  pool_size: [1, 2\n",
    "tabs": b"database:\n\tpool_size: 2\n",
    "complex_key": b"? [a, b]\n: 1\n",
    "null_section": b"database:\nsocket: ~\n",
    "quoted_everything": b'"database":\n  "conninfo": \'dbname=app\'\n  "pool_size": "4"\n',
    "block_scalar": b"database:\n  conninfo: |\n    host=/tmp\n    dbname=app\n",
    "utf8_bom": b"\xef\xbb\xbfdatabase:\n  pool_size: 3\n",
}


def write(dirname, name, data):
    with open(os.path.join(HERE, dirname, name), "wb") as f:
        f.write(data)


for d in ("request", "config"):
    for f in os.listdir(os.path.join(HERE, d)):
        os.remove(os.path.join(HERE, d, f))
for name, data in requests.items():
    write("request", name, data)
for name, (data, s) in scripted.items():
    write("request", name, data + b"\n" + s)
for name, data in CONFIGS.items():
    write("config", name + ".yaml", data)
