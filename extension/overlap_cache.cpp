// overlap_cache: where a rule comes from, and what each backend keeps of it. Runs when the
// overlap trigger fires (trigger_entry, rule_plan) and whenever a rule is added, dropped, validated
// or looked for (read_rules).
//
// Where a rule comes from: only slotguard.overlap_rule_defs, which only the extension's owner can
// write (add_overlap_rule writes it after validating every part). The trigger finds its rule
// there by its own name and table and ignores its arguments; a trigger on
// slotguard.overlap_trigger() without a rule is refused. The check statement is built from the
// rule and the table as it is now (overlap_statement.cpp), once per backend and rule, and kept
// (SPI_keepplan) in the cache below.
//
// Written in PostgreSQL's style: palloc'd data, no C++ objects with destructors.
#include "boundary.hpp"
#include "overlap.hpp"
#include "util.hpp"

namespace sg::overlap {

namespace {

using sg::Error;

// ---- rules, from slotguard.overlap_rule_defs ------------------------------------------------

// defs_relid returns slotguard.overlap_rule_defs.
Oid defs_relid() {
  const Oid relid = get_relname_relid("overlap_rule_defs", get_namespace_oid("slotguard", false));
  if (!OidIsValid(relid))
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                    errmsg("relation \"slotguard.overlap_rule_defs\" does not exist")));
  return relid;
}

// name_items returns a column list of the catalog (name[]); anything else is corruption.
char** name_items(Datum array, int* n) {
  ArrayType* a = DatumGetArrayTypeP(array);
  if (ARR_ELEMTYPE(a) != NAMEOID || ARR_NDIM(a) > 1)
    ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
                    errmsg("slotguard.overlap_rule_defs holds a column list that is not name[]")));
  char** out = name_list(a, n);
  if (out == nullptr)
    ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
                    errmsg("slotguard.overlap_rule_defs holds a NULL column name")));
  return out;
}

// copy_rule copies r into the current memory context (a cache entry's own).
Rule* copy_rule(const Rule& r) {
  auto* c = static_cast<Rule*>(palloc(sizeof(Rule)));
  *c = r;
  c->name = pstrdup(r.name);
  c->only_when = pstrdup(r.only_when);
  c->message = pstrdup(r.message);
  c->trigger_name = pstrdup(r.trigger_name);
  c->keys = static_cast<char**>(palloc(sizeof(char*) * r.nkeys));
  for (int i = 0; i < r.nkeys; i++) c->keys[i] = pstrdup(r.keys[i]);
  c->period = static_cast<char**>(palloc(sizeof(char*) * r.nperiod));
  for (int i = 0; i < r.nperiod; i++) c->period[i] = pstrdup(r.period[i]);
  return c;
}

// ---- per-backend cache of rules by trigger --------------------------------------------------

// The cache of RuleEntry (overlap.hpp) by trigger. Any invalidation of the table's relcache entry
// (ALTER TABLE, CREATE or DROP TRIGGER or INDEX, ALTER OWNER, ...) makes the entry be read again;
// what it held is freed at the end of the transaction (a caller up the stack may still be using
// it).
HTAB* rule_cache = nullptr;
List* retired_plans = NIL;     // in TopMemoryContext
List* retired_contexts = NIL;  // in TopMemoryContext

// An entry is read again when its table changes, and when the rule's own table changes (a
// partition's trigger runs the rule of an ancestor): the check names that table, and a plan
// prepared under its old name would find, after a rename, whatever table took that name.
void forget_rules(Datum, Oid relid) noexcept {
  HASH_SEQ_STATUS it;
  hash_seq_init(&it, rule_cache);
  while (auto* e = static_cast<RuleEntry*>(hash_seq_search(&it)))
    if (relid == InvalidOid || e->relid == relid || (e->rule != nullptr && e->rule->tbl == relid)) {
      e->valid = false;
      e->index_known = false;
    }
}

// A schema renamed (ALTER SCHEMA ... RENAME sends no relcache invalidation for its tables): every
// entry is read again, with the names of now.
void forget_rules_of_schemas(Datum, int, uint32) noexcept {
  forget_rules(0, InvalidOid);
}

void free_retired(XactEvent event, void*) {
  if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
      event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT)
    return;
  ListCell* lc;
  foreach (lc, retired_plans) SPI_freeplan(static_cast<SPIPlanPtr>(lfirst(lc)));
  foreach (lc, retired_contexts) MemoryContextDelete(static_cast<MemoryContext>(lfirst(lc)));
  list_free(retired_plans);
  list_free(retired_contexts);
  retired_plans = NIL;
  retired_contexts = NIL;
}

// rule_of_trigger reads the rule whose trigger tg is: a rule of rel itself, or (a trigger
// PostgreSQL cloned onto a partition) of one of its partitioned ancestors. A trigger attached by
// hand has none and is refused, whatever its arguments.
Rule* rule_of_trigger(Relation rel, const Trigger* tg) {
  List* tables = rule_tables(RelationGetRelid(rel));
  ListCell* lc;
  foreach (lc, tables) {
    List* rules = read_rules(lfirst_oid(lc));
    ListCell* rc;
    foreach (rc, rules) {
      auto* r = static_cast<Rule*>(lfirst(rc));
      if (strcmp(r->trigger_name, tg->tgname) == 0) return r;
    }
  }
  throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
              psprintf("trigger \"%s\" on \"%s\" is not an overlap rule", tg->tgname,
                       RelationGetRelationName(rel)),
              "slotguard.overlap_rule_defs has no rule of this table with this trigger.",
              "Overlap rules are added with slotguard.add_overlap_rule(); "
              "slotguard.overlap_trigger() cannot be attached by hand.")
      .on(RelationGetRelid(rel));
}

}  // namespace

List* read_rules(Oid tbl) {
  static const struct {
    const char* name;
    Oid type;
  } kColumns[] = {{"id", INT4OID},
                  {"tbl", REGCLASSOID},
                  {"rule_name", NAMEOID},
                  {"key_columns", NAMEARRAYOID},
                  {"period_columns", NAMEARRAYOID},
                  {"capacity", INT4OID},
                  {"only_when", TEXTOID},
                  {"message", TEXTOID},
                  {"trigger_name", NAMEOID}};
  constexpr int kN = sizeof kColumns / sizeof kColumns[0];
  Relation defs = table_open(defs_relid(), AccessShareLock);
  TupleDesc desc = RelationGetDescr(defs);
  AttrNumber att[kN];
  for (int c = 0; c < kN; c++) {
    att[c] = InvalidAttrNumber;
    for (int i = 0; i < desc->natts; i++) {
      const Form_pg_attribute a = TupleDescAttr(desc, i);
      if (!a->attisdropped && strcmp(NameStr(a->attname), kColumns[c].name) == 0) {
        if (a->atttypid == kColumns[c].type) att[c] = a->attnum;
        break;
      }
    }
    if (att[c] == InvalidAttrNumber)
      ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
                      errmsg("column \"%s\" of slotguard.overlap_rule_defs is missing or has "
                             "another type",
                             kColumns[c].name)));
  }
  ScanKeyData key;
  ScanKeyInit(&key, att[1], BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(tbl));
  Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
  SysScanDesc scan = systable_beginscan(defs, InvalidOid, false, snapshot, 1, &key);
  List* rules = NIL;
  HeapTuple tuple;
  while ((tuple = systable_getnext(scan)) != nullptr) {
    CHECK_FOR_INTERRUPTS();
    Datum v[kN];
    bool isnull[kN];
    for (int c = 0; c < kN; c++) v[c] = heap_getattr(tuple, att[c], desc, &isnull[c]);
    if (isnull[0] || isnull[2] || isnull[3] || isnull[4] || isnull[5] || isnull[8])
      ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
                      errmsg("slotguard.overlap_rule_defs holds an incomplete rule")));
    auto* r = static_cast<Rule*>(palloc0(sizeof(Rule)));
    r->id = DatumGetInt32(v[0]);
    r->tbl = tbl;
    r->name = pstrdup(NameStr(*DatumGetName(v[2])));
    r->keys = name_items(v[3], &r->nkeys);
    r->period = name_items(v[4], &r->nperiod);
    r->capacity = DatumGetInt32(v[5]);
    r->only_when = isnull[6] ? "" : TextDatumGetCString(v[6]);
    r->message = isnull[7] ? "" : TextDatumGetCString(v[7]);
    r->trigger_name = pstrdup(NameStr(*DatumGetName(v[8])));
    if (r->nkeys < 1 || (r->nperiod != 1 && r->nperiod != 2) || r->capacity < 1)
      ereport(ERROR,
              (errcode(ERRCODE_DATA_CORRUPTED),
               errmsg("overlap rule \"%s\" in slotguard.overlap_rule_defs is malformed", r->name)));
    rules = lappend(rules, r);
  }
  systable_endscan(scan);
  UnregisterSnapshot(snapshot);
  table_close(defs, AccessShareLock);
  return rules;
}

char** name_list(ArrayType* a, int* n) {
  Datum* items;
  bool* nulls;
  deconstruct_array(a, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR, &items, &nulls, n);
  char** out = static_cast<char**>(palloc(sizeof(char*) * (*n + 1)));
  for (int i = 0; i < *n; i++) {
    if (nulls[i]) return nullptr;
    out[i] = pstrdup(NameStr(*DatumGetName(items[i])));
  }
  return out;
}

List* rule_tables(Oid relid) {
  List* tables = list_make1_oid(relid);
  if (get_rel_relispartition(relid)) tables = list_concat(tables, get_partition_ancestors(relid));
  return tables;
}

List* rules_covering(Oid relid) {
  List* rules = NIL;
  ListCell* lc;
  foreach (lc, rule_tables(relid)) rules = list_concat(rules, read_rules(lfirst_oid(lc)));
  return rules;
}

Oid rel_owner(Oid relid) {
  HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
  if (!HeapTupleIsValid(tuple))
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                    errmsg("relation with OID %u does not exist", relid)));
  const Oid owner = reinterpret_cast<Form_pg_class>(GETSTRUCT(tuple))->relowner;
  ReleaseSysCache(tuple);
  return owner;
}

RuleEntry* trigger_entry(Relation rel, const Trigger* tg) {
  if (rule_cache == nullptr) {
    rule_cache =
        sg::util::backend_hash("slotguard overlap rules", 64, sizeof(Oid), sizeof(RuleEntry));
    CacheRegisterRelcacheCallback(forget_rules, 0);
    CacheRegisterSyscacheCallback(NAMESPACEOID, forget_rules_of_schemas, 0);
    RegisterXactCallback(free_retired, nullptr);
  }
  bool found;
  auto* e = static_cast<RuleEntry*>(hash_search(rule_cache, &tg->tgoid, HASH_ENTER, &found));
  if (!found) {
    e->valid = false;
    e->context = nullptr;
    e->rule = nullptr;
    e->plan = nullptr;
  }
  if (e->valid && e->relid == RelationGetRelid(rel)) return e;
  // Retire what the entry held (freed at the end of the transaction) and read the rule again.
  MemoryContext saved = MemoryContextSwitchTo(TopMemoryContext);
  if (e->plan) retired_plans = lappend(retired_plans, e->plan);
  if (e->context) retired_contexts = lappend(retired_contexts, e->context);
  MemoryContextSwitchTo(saved);
  e->plan = nullptr;
  e->context = nullptr;
  e->rule = nullptr;
  e->valid = false;
  Rule* r = rule_of_trigger(rel, tg);
  MemoryContext context =
      AllocSetContextCreate(CacheMemoryContext, "slotguard overlap rule", ALLOCSET_SMALL_SIZES);
  saved = MemoryContextSwitchTo(context);
  Rule* copy = copy_rule(*r);
  MemoryContextSwitchTo(saved);
  e->context = context;
  e->rule = copy;
  e->relid = RelationGetRelid(rel);
  e->index_known = false;
  e->index = InvalidOid;
  e->valid = true;
  return e;
}

SPIPlanPtr rule_plan(RuleEntry* e, Relation rel) {
  if (e->plan != nullptr) return e->plan;
  SPIPlanPtr plan = prepare_check(rel, *e->rule);
  SPI_keepplan(plan);
  e->plan = plan;
  return plan;
}

}  // namespace sg::overlap
