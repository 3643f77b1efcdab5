// audit: slotguard.audit_trigger(version_column), the audit writer of versioned tables
// (docs/sql-api.md "Audit"). enable_versioning(..., audit => true) installs it AFTER INSERT OR
// UPDATE OR DELETE FOR EACH ROW; it runs once per written row and appends one row to
// slotguard.audit in the writer's transaction, with the extension owner's rights. It reads no
// column by type: rows become JSON through their types' own output.
//
// Partitioned tables: the rows are audited under the partitioned table's name (the trigger is
// cloned onto each partition). An UPDATE that moves a row to another partition reaches the
// partitions as a DELETE and an INSERT (see row_moves.hpp); it is audited as the one UPDATE it
// is: the DELETE half writes its DELETE row as usual and remembers it, and the INSERT half
// replaces that row with one UPDATE row (old row, new row, changes). Should the INSERT half never
// come (the destination's trigger disabled), the DELETE row stays: nothing is lost.
//
// Written in PostgreSQL's style: palloc'd data, no C++ objects with destructors.
#include "boundary.hpp"
#include "row_moves.hpp"
#include "util.hpp"

namespace {

using sg::Error;

// The audit insert: one generic plan for every table. Fully schema-qualified (names, functions,
// operators, casts), because it runs with the extension owner's rights: no caller's search_path
// can reach it. Parameters: $1 db_role, $2 tbl, $3 op, $4 primary-key column names, $5 version
// column, $6 old row as json, $7 new row as json.
constexpr const char* kAuditSql =
    "INSERT INTO slotguard.audit (txid, db_role, actor, actor_role, tbl, row_key, op, "
    "old_version, new_version, changes) "
    "SELECT pg_catalog.txid_current(), $1, "
    "(SELECT CASE WHEN v OPERATOR(pg_catalog.=) '' THEN NULL ELSE v END "
    "   FROM pg_catalog.current_setting('slotguard.actor', true) v), "
    "(SELECT CASE WHEN v OPERATOR(pg_catalog.=) '' THEN NULL ELSE v END "
    "   FROM pg_catalog.current_setting('slotguard.actor_role', true) v), $2, "
    "(SELECT pg_catalog.jsonb_object_agg(e.key, e.value) "
    "   FROM pg_catalog.jsonb_each(coalesce(n.j, o.j)) e "
    "  WHERE e.key OPERATOR(pg_catalog.=) ANY ($4)), "
    "$3, o.j OPERATOR(pg_catalog.->>) $5, n.j OPERATOR(pg_catalog.->>) $5, "
    "coalesce((SELECT pg_catalog.jsonb_object_agg(coalesce(b.key, a.key), "
    "                 pg_catalog.jsonb_build_array(coalesce(a.value, 'null'::pg_catalog.jsonb), "
    "                                              coalesce(b.value, 'null'::pg_catalog.jsonb))) "
    "   FROM pg_catalog.jsonb_each(o.j) a "
    "   FULL JOIN pg_catalog.jsonb_each(n.j) b ON a.key OPERATOR(pg_catalog.=) b.key "
    "  WHERE a.key IS NULL OR b.key IS NULL OR NOT (a.value OPERATOR(pg_catalog.=) b.value)), "
    "  '{}'::pg_catalog.jsonb) "
    "FROM (SELECT $6::pg_catalog.jsonb AS j) o, (SELECT $7::pg_catalog.jsonb AS j) n "
    "RETURNING id";
constexpr int kAuditParams = 7;

// Replaces the DELETE row written for the first half of a cross-partition UPDATE (see the head
// comment).
constexpr const char* kAuditForgetSql =
    "DELETE FROM slotguard.audit WHERE id OPERATOR(pg_catalog.=) $1";

SPIPlanPtr audit_plan = nullptr;
SPIPlanPtr audit_forget_plan = nullptr;

// What the DELETE half of a cross-partition UPDATE leaves for the INSERT half (row_moves): the id
// of the DELETE row it wrote and the old row, as JSON text.
struct MovedRow {
  int64 audit_id;
  char* old_json;
};

Datum row_json(HeapTuple tuple, TupleDesc desc) {
  return DirectFunctionCall1(row_to_json, heap_copy_tuple_as_datum(tuple, desc));
}

Datum primary_key_names(Relation rel) {
  Bitmapset* pk = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);
  ArrayBuildState* astate = initArrayResult(TEXTOID, CurrentMemoryContext, false);
  int member = -1;
  while ((member = bms_next_member(pk, member)) >= 0) {
    const AttrNumber attnum = member + FirstLowInvalidHeapAttributeNumber;
    const char* name = NameStr(TupleDescAttr(RelationGetDescr(rel), attnum - 1)->attname);
    astate =
        accumArrayResult(astate, CStringGetTextDatum(name), false, TEXTOID, CurrentMemoryContext);
  }
  return makeArrayResult(astate, CurrentMemoryContext);
}

// Per-statement cache of the audit trigger (in fn_extra), allocated in fn_mcxt.
struct AuditCache {
  Oid tgoid;
  Oid user;
  Oid owner;
  Datum db_role, table, pk_names, version_column;
};

AuditCache* audit_cache(FunctionCallInfo fcinfo, TriggerData* td) {
  auto* cache = static_cast<AuditCache*>(fcinfo->flinfo->fn_extra);
  const Oid user = GetUserId();
  if (cache && cache->tgoid == td->tg_trigger->tgoid && cache->user == user) return cache;
  // The table the audit was enabled on: for a partition, the partitioned table (the trigger is a
  // clone of its trigger), so that all rows of one table are audited under one name.
  const Oid table = sg::moves::trigger_root(td->tg_trigger, RelationGetRelid(td->tg_relation));
  MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
  cache = static_cast<AuditCache*>(palloc0(sizeof(AuditCache)));
  cache->tgoid = td->tg_trigger->tgoid;
  cache->user = user;
  cache->owner = sg::util::audit_owner();
  cache->db_role = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(user, false)));
  cache->table = CStringGetTextDatum(sg::util::qualified_name(table));
  cache->pk_names = primary_key_names(td->tg_relation);
  cache->version_column = CStringGetTextDatum(td->tg_trigger->tgargs[0]);
  MemoryContextSwitchTo(old);
  fcinfo->flinfo->fn_extra = cache;
  return cache;
}

// kept_plan returns *plan, preparing and keeping it (SPI connected) the first time.
SPIPlanPtr kept_plan(SPIPlanPtr* plan, const char* sql, int nargs, Oid* types) {
  if (*plan == nullptr) {
    SPIPlanPtr prepared = SPI_prepare(sql, nargs, types);
    if (prepared == nullptr)
      elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
    SPI_keepplan(prepared);
    *plan = prepared;
  }
  return *plan;
}

// forget_row deletes the audit row `id` (SPI connected).
void forget_row(int64 id) {
  Oid types[1] = {INT8OID};
  SPIPlanPtr plan = kept_plan(&audit_forget_plan, kAuditForgetSql, 1, types);
  Datum value = Int64GetDatum(id);
  const int rc = SPI_execute_plan(plan, &value, nullptr, false, 0);
  if (rc != SPI_OK_DELETE) elog(ERROR, "audit delete failed: %s", SPI_result_code_string(rc));
}

SPIPlanPtr insert_plan() {
  Oid types[kAuditParams] = {NAMEOID, TEXTOID, TEXTOID, TEXTARRAYOID, TEXTOID, JSONOID, JSONOID};
  return kept_plan(&audit_plan, kAuditSql, kAuditParams, types);
}

// insert_row runs the audit insert (SPI connected) and returns the new row's id.
int64 insert_row(SPIPlanPtr plan, Datum* values, const char* nulls) {
  const int rc = SPI_execute_plan(plan, values, nulls, false, 0);
  if (rc != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
    elog(ERROR, "audit insert failed: %s", SPI_result_code_string(rc));
  if (SPI_gettypeid(SPI_tuptable->tupdesc, 1) != INT8OID)
    elog(ERROR, "slotguard.audit.id is not bigint: the table was altered");
  bool isnull;
  const Datum id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
  return isnull ? 0 : DatumGetInt64(id);
}

// audit_write runs one audit insert (as the audit table's owner) and returns the new row's id;
// forget, if not 0, is the id of a row to delete first.
int64 audit_write(AuditCache* cache, Datum* values, const char* nulls, int64 forget) {
  sg::util::OwnerScope owner;
  owner.enter(cache->owner);
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
  SPIPlanPtr plan = insert_plan();
  if (forget != 0) forget_row(forget);
  const int64 result = insert_row(plan, values, nulls);
  SPI_finish();
  owner.restore();
  return result;
}

// ---- One audited event ----

// AuditEvent is the row event being audited: the op recorded and the rows it had.
struct AuditEvent {
  const char* op;
  HeapTuple old_tuple;
  HeapTuple new_tuple;
};

TriggerData* audit_trigger_data(FunctionCallInfo fcinfo) {
  auto* td = sg::util::trigger_data(fcinfo, "slotguard.audit_trigger()");
  if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
      td->tg_trigger->tgnargs != 1)
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                "slotguard.audit_trigger(version_column) must fire AFTER ... FOR EACH ROW", "",
                "Install the trigger with slotguard.enable_versioning(..., audit => true).");
  return td;
}

// audit_event reads the event of td; false for an event that is not audited.
bool audit_event(const TriggerData* td, AuditEvent* ev) {
  ev->old_tuple = nullptr;
  ev->new_tuple = nullptr;
  if (TRIGGER_FIRED_BY_INSERT(td->tg_event)) {
    ev->op = "INSERT";
    ev->new_tuple = td->tg_trigtuple;
  } else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event)) {
    ev->op = "UPDATE";
    ev->old_tuple = td->tg_trigtuple;
    ev->new_tuple = td->tg_newtuple;
  } else if (TRIGGER_FIRED_BY_DELETE(td->tg_event)) {
    ev->op = "DELETE";
    ev->old_tuple = td->tg_trigtuple;
  } else {
    return false;
  }
  return true;
}

// audit_values fills the insert's parameters but $3 (op), which the caller sets last.
void audit_values(const AuditCache* cache, const AuditEvent& ev, TupleDesc desc, Datum* values,
                  char* nulls) {
  values[0] = cache->db_role;
  values[1] = cache->table;
  values[3] = cache->pk_names;
  values[4] = cache->version_column;
  if (ev.old_tuple)
    values[5] = row_json(ev.old_tuple, desc);
  else
    nulls[5] = 'n';
  if (ev.new_tuple)
    values[6] = row_json(ev.new_tuple, desc);
  else
    nulls[6] = 'n';
}

// claim_move turns an INSERT that is the second half of a cross-partition UPDATE into that
// UPDATE: op, old row, and the id of the DELETE row to replace (0 when it is a plain INSERT).
int64 claim_move(const TriggerData* td, AuditEvent* ev, Datum* values, char* nulls) {
  if (!ev->new_tuple || ev->old_tuple) return 0;
  auto* moved = static_cast<MovedRow*>(
      sg::moves::claim(sg::moves::Kind::kAudit, td->tg_trigger, ev->new_tuple));
  if (moved == nullptr) return 0;
  ev->op = "UPDATE";
  values[5] = CStringGetTextDatum(moved->old_json);
  nulls[5] = ' ';
  return moved->audit_id;
}

// remember_move leaves the DELETE row `id` and the old row for the INSERT half, when this DELETE
// is the first half of a cross-partition UPDATE.
void remember_move(const TriggerData* td, const AuditEvent& ev, Datum old_json, int64 id) {
  if (!ev.old_tuple || ev.new_tuple || !sg::moves::moved_out(ev.old_tuple)) return;
  const char* json = text_to_cstring(DatumGetTextPP(old_json));
  MemoryContext mcxt;
  auto* moved = static_cast<MovedRow*>(sg::moves::remember(sg::moves::Kind::kAudit, td->tg_trigger,
                                                           ev.old_tuple, sizeof(MovedRow), &mcxt));
  moved->audit_id = id;
  moved->old_json = MemoryContextStrdup(mcxt, json);
}

}  // namespace

// slotguard.audit_trigger(version_column): see the head comment.
SG_FUNCTION(sg_audit_trigger) {
  TriggerData* td = audit_trigger_data(fcinfo);
  AuditEvent ev;
  if (!audit_event(td, &ev)) return PointerGetDatum(nullptr);
  AuditCache* cache = audit_cache(fcinfo, td);
  Datum values[kAuditParams];
  char nulls[kAuditParams] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
  audit_values(cache, ev, RelationGetDescr(td->tg_relation), values, nulls);
  const int64 forget = claim_move(td, &ev, values, nulls);
  values[2] = CStringGetTextDatum(ev.op);
  const int64 id = audit_write(cache, values, nulls, forget);
  remember_move(td, ev, values[5], id);
  return PointerGetDatum(nullptr);
}
