// transitions: add_transition_rule / drop_transition_rule (DDL, run by the table's owner) and
// slotguard.transition_trigger(), which runs after every written row of a table with a rule and
// refuses status changes the rule does not allow with SG005 (docs/sql-api.md "Transition rules",
// docs/errors.md). The rule travels in the trigger's arguments (column, transitions JSON, by_role
// JSON); parsed rules (common/transition_rules) are cached per trigger.
#include "boundary.hpp"
#include "row_moves.hpp"
#include "transition_rules.hpp"
#include "util.hpp"

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

namespace {

using sg::Error;
using sg::core::RuleError;
using sg::core::TransitionRules;

constexpr const char* kPrefix = "slotguard_20_transition_";

// ---- pure C++ part: no PostgreSQL calls below until the next marker ----

struct Cached {
  std::string transitions, by_role;
  TransitionRules rules;
};
std::unordered_map<Oid, std::unique_ptr<Cached>> cache;

const TransitionRules& rules_for(Oid tgoid, const char* transitions, const char* by_role) {
  auto& slot = cache[tgoid];
  if (!slot || slot->transitions != transitions || slot->by_role != by_role) {
    if (cache.size() > 4096) {
      cache.clear();
      return rules_for(tgoid, transitions, by_role);
    }
    auto fresh = std::make_unique<Cached>();
    fresh->transitions = transitions;
    fresh->by_role = by_role;
    try {
      fresh->rules = TransitionRules::parse(transitions, by_role);
    } catch (const RuleError& e) {
      throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                  std::string("bad transition rule in trigger arguments: ") + e.what());
    }
    slot = std::move(fresh);
  }
  return slot->rules;
}

std::optional<std::string> maybe(const char* s) {
  return s ? std::optional<std::string>(s) : std::nullopt;
}

// transition_allowed asks the cached rule of trigger tgoid about one row.
// A NULL state is not a state a rule can list: a row may keep NULL, or start with it where the
// rule does not restrict initial states, but nothing changes to NULL.
bool transition_allowed(Oid tgoid, const char* transitions, const char* by_role, bool insert,
                        const char* from, const char* to, const char* role) {
  const TransitionRules& rules = rules_for(tgoid, transitions, by_role);
  if (to == nullptr) {
    if (insert) return !rules.restricts_initial(role);
    return from == nullptr;
  }
  return rules.allowed(maybe(from), to, role);
}

[[noreturn]] void throw_invalid(Oid tgoid, const char* transitions, const char* by_role, Oid relid,
                                const char* table, const char* column, const char* from,
                                const char* to, const char* role) {
  const auto next = rules_for(tgoid, transitions, by_role).next_states(maybe(from), role);
  std::string list;
  for (const auto& s : next) list += (list.empty() ? "" : ", ") + s;
  const std::string to_text = to ? std::string("\"") + to + "\"" : "NULL";
  const std::string detail = std::string("Table ") + table + ", role \"" + role + "\".";
  if (from == nullptr)
    throw Error(sg::errcodes::kInvalidTransition,
                std::string("invalid initial state ") + to_text + " of \"" + column + "\"", detail,
                next.empty() ? std::string("No initial state is allowed.")
                             : "Allowed initial states: " + list + ".")
        .on(relid, column);
  const std::string from_text = std::string("\"") + from + "\"";
  throw Error(
      sg::errcodes::kInvalidTransition,
      std::string("invalid transition of \"") + column + "\" from " + from_text + " to " + to_text,
      detail,
      next.empty() ? "Allowed next states from " + from_text + ": none."
                   : "Allowed next states from " + from_text + ": " + list + ".")
      .on(relid, column);
}

void validate(const char* transitions, const char* by_role) {
  try {
    TransitionRules::parse(transitions, by_role);
  } catch (const RuleError& e) {
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, e.what());
  }
}

// ---- PostgreSQL-style part: palloc'd data only, no C++ objects with destructors ----

const char* writer_role() {
  const char* role = GetConfigOption("slotguard.actor_role", true, false);
  if (role != nullptr && role[0] != '\0') return role;
  // current_user's name, remembered for as long as the user stays the same.
  static Oid cached_user = InvalidOid;
  static char cached_name[NAMEDATALEN];
  const Oid user = GetUserId();
  if (user != cached_user) {
    strlcpy(cached_name, GetUserNameFromId(user, false), sizeof cached_name);
    cached_user = user;
  }
  return cached_name;
}

// find_rule returns the transition trigger of rel for column, or NULL.
Trigger* find_rule(Relation rel, const char* column) {
  TriggerDesc* desc = rel->trigdesc;
  if (desc == nullptr) return nullptr;
  for (int i = 0; i < desc->numtriggers; i++) {
    Trigger* tg = &desc->triggers[i];
    if (strncmp(tg->tgname, kPrefix, strlen(kPrefix)) == 0 && tg->tgnargs == 3 &&
        strcmp(tg->tgargs[0], column) == 0)
      return tg;
  }
  return nullptr;
}

// rule_trigger_name writes the name of the trigger of column's rule into name: the one the rule
// already has, else prefix + column, made unique with the attribute number if another column's
// rule took that name.
void rule_trigger_name(Oid relid, const char* column, AttrNumber att, char name[NAMEDATALEN]) {
  Relation rel = table_open(relid, NoLock);
  Trigger* existing = find_rule(rel, column);
  if (existing) {
    strlcpy(name, existing->tgname, NAMEDATALEN);
  } else {
    strlcpy(name, psprintf("%s%s", kPrefix, column), NAMEDATALEN);  // truncated like any name
    if (sg::util::find_trigger(rel, name) != nullptr)
      strlcpy(name, psprintf("%s%d", kPrefix, att), NAMEDATALEN);
  }
  table_close(rel, NoLock);
}

char* jsonb_text(Jsonb* jb) {
  return JsonbToCString(nullptr, &jb->root, VARSIZE(jb));
}

// What the source half of a cross-partition UPDATE leaves for the destination half (row_moves):
// the old row's state, as text (NULL for SQL NULL).
struct MovedState {
  char* from;
};

// rule_column returns the attribute number of the column the rule of trigger tg checks; 42703
// when it was renamed or dropped since.
int rule_column(Relation rel, const Trigger* tg) {
  const int att = SPI_fnumber(RelationGetDescr(rel), tg->tgargs[0]);  // skips dropped columns
  if (att <= 0)
    throw Error(ERRCODE_UNDEFINED_COLUMN,
                psprintf("column \"%s\" of relation \"%s\" does not exist", tg->tgargs[0],
                         sg::util::qualified_name(RelationGetRelid(rel))),
                psprintf("Trigger \"%s\" checks this column; it was renamed or dropped after "
                         "slotguard.add_transition_rule(), or the trigger was created by hand.",
                         tg->tgname),
                psprintf("Call slotguard.drop_transition_rule(%s, %s), then add the rule again "
                         "for the column's new name.",
                         quote_literal_cstr(sg::util::qualified_name(RelationGetRelid(rel))),
                         quote_literal_cstr(tg->tgargs[0])))
        .on(RelationGetRelid(rel), tg->tgargs[0]);
  return att;
}

// StateChange is what the trigger checks for one row event: the state before (NULL for a new row
// or SQL NULL) and after, as text; insert says that `to` is an initial state.
struct StateChange {
  HeapTuple result;  // what the trigger returns
  const char* from;
  const char* to;
  bool insert;
};

// inserted reads an INSERT event. The destination half of a cross-partition UPDATE is checked as
// that UPDATE. False when there is nothing to check.
bool inserted(TriggerData* td, int att, StateChange* ch) {
  TupleDesc desc = RelationGetDescr(td->tg_relation);
  ch->result = td->tg_trigtuple;
  ch->to = SPI_getvalue(ch->result, desc, att);
  auto* moved = static_cast<MovedState*>(
      sg::moves::claim(sg::moves::Kind::kTransition, td->tg_trigger, ch->result));
  if (moved == nullptr) {
    ch->insert = true;
    return true;
  }
  ch->from = moved->from ? pstrdup(moved->from) : nullptr;
  if (ch->from != nullptr && ch->to != nullptr && strcmp(ch->from, ch->to) == 0) return false;
  return !(ch->from == nullptr && ch->to == nullptr);
}

// deleted remembers the old state when the DELETE is the source half of a cross-partition UPDATE,
// for the other half.
void deleted(TriggerData* td, int att) {
  if (!sg::moves::moved_out(td->tg_trigtuple)) return;
  const char* old_state = SPI_getvalue(td->tg_trigtuple, RelationGetDescr(td->tg_relation), att);
  MemoryContext mcxt;
  auto* moved = static_cast<MovedState*>(sg::moves::remember(
      sg::moves::Kind::kTransition, td->tg_trigger, td->tg_trigtuple, sizeof(MovedState), &mcxt));
  if (old_state != nullptr) moved->from = MemoryContextStrdup(mcxt, old_state);
}

// state_change reads the row event of td; false when there is nothing to check.
bool state_change(TriggerData* td, int att, StateChange* ch) {
  *ch = {td->tg_trigtuple, nullptr, nullptr, false};
  if (TRIGGER_FIRED_BY_INSERT(td->tg_event)) return inserted(td, att, ch);
  if (TRIGGER_FIRED_BY_UPDATE(td->tg_event)) {
    TupleDesc desc = RelationGetDescr(td->tg_relation);
    ch->result = td->tg_newtuple;
    ch->from = SPI_getvalue(td->tg_trigtuple, desc, att);
    ch->to = SPI_getvalue(ch->result, desc, att);
    return !(ch->from != nullptr && ch->to != nullptr && strcmp(ch->from, ch->to) == 0);
  }
  if (TRIGGER_FIRED_BY_DELETE(td->tg_event)) deleted(td, att);
  return false;
}

}  // namespace

// slotguard.transition_trigger(column, transitions, by_role): AFTER INSERT OR UPDATE OF column
// (OR DELETE on a partitioned table). AFTER, so that it sees the row really written: an INSERT ...
// ON CONFLICT DO UPDATE is checked as the update it became, and the version trigger (BEFORE) has
// already refused a stale writer.
//
// The state is compared as text (the column type's output), so any column type works; a rule
// whose states are words never matches an integer column's values, and says so in SG005.
//
// Partitioned tables: an UPDATE that moves a row to another partition reaches the leaves as a
// DELETE and an INSERT (see row_moves.hpp). Checked as an INSERT, the move would only have to
// satisfy the initial states: a forbidden change would pass, and a legal move of a row in a
// non-initial state would be refused. So the DELETE half remembers the old state and the INSERT
// half checks old -> new as the UPDATE it is. The check runs at the INSERT half, i.e. on the row
// as written into the destination (after its BEFORE triggers), like every other check here.
// A BEFORE UPDATE trigger could not do it: it cannot know yet whether the row moves, nor see what
// the destination's BEFORE INSERT triggers write.
SG_FUNCTION(sg_transition_trigger) {
  auto* td = sg::util::trigger_data(fcinfo, "slotguard.transition_trigger()");
  Trigger* tg = td->tg_trigger;
  if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
      tg->tgnargs != 3)
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                "slotguard.transition_trigger(column, transitions, by_role) must fire AFTER "
                "... FOR EACH ROW",
                "", "Install the trigger with slotguard.add_transition_rule().");
  Relation rel = td->tg_relation;
  StateChange ch;
  if (!state_change(td, rule_column(rel, tg), &ch)) return PointerGetDatum(ch.result);
  const char* role = writer_role();
  if (!transition_allowed(tg->tgoid, tg->tgargs[1], tg->tgargs[2], ch.insert, ch.from, ch.to, role))
    throw_invalid(tg->tgoid, tg->tgargs[1], tg->tgargs[2], RelationGetRelid(rel),
                  // the table the rule was added to (for a partition: its partitioned table)
                  sg::util::qualified_name(sg::moves::trigger_root(tg, RelationGetRelid(rel))),
                  tg->tgargs[0], ch.from, ch.to, role);
  return PointerGetDatum(ch.result);
}

// slotguard.add_transition_rule(tbl, column_name, transitions, by_role): installs (or replaces)
// the rule for one column.
SG_FUNCTION(sg_add_transition_rule) {
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                "tbl, column_name and transitions must not be NULL");
  const Oid relid = PG_GETARG_OID(0);
  const char* column = NameStr(*PG_GETARG_NAME(1));
  const char* transitions = jsonb_text(PG_GETARG_JSONB_P(2));
  const char* by_role = PG_ARGISNULL(3) ? "" : jsonb_text(PG_GETARG_JSONB_P(3));
  if (strcmp(by_role, "null") == 0) by_role = "";  // JSON null: no per-role transitions
  sg::util::check_table(relid, true);
  const AttrNumber att = get_attnum(relid, column);
  if (att == InvalidAttrNumber || att < 0)
    throw Error(
        ERRCODE_UNDEFINED_COLUMN,
        psprintf("column \"%s\" of relation \"%s\" does not exist", column, get_rel_name(relid)));
  validate(transitions, by_role);
  LockRelationOid(relid, ShareRowExclusiveLock);

  char name[NAMEDATALEN];
  rule_trigger_name(relid, column, att, name);
  const char* table = sg::util::qualified_name(relid);
  // On a partitioned table the trigger also fires on DELETE: that is how it sees the first half
  // of a cross-partition UPDATE (see sg_transition_trigger).
  const bool partitioned = get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE;
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
  sg::util::spi_exec(psprintf(
      "CREATE OR REPLACE TRIGGER %s AFTER INSERT OR UPDATE OF %s%s ON %s "
      "FOR EACH ROW EXECUTE FUNCTION "
      "slotguard.transition_trigger(%s, %s, %s)",
      quote_identifier(name), quote_identifier(column), partitioned ? " OR DELETE" : "", table,
      quote_literal_cstr(column), quote_literal_cstr(transitions), quote_literal_cstr(by_role)));
  SPI_finish();
  PG_RETURN_VOID();
}

// slotguard.drop_transition_rule(tbl, column_name): removes the rule of one column.
SG_FUNCTION(sg_drop_transition_rule) {
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "tbl and column_name must not be NULL");
  const Oid relid = PG_GETARG_OID(0);
  const char* column = NameStr(*PG_GETARG_NAME(1));
  sg::util::check_table(relid, true);
  LockRelationOid(relid, ShareRowExclusiveLock);
  char* name = nullptr;
  {
    Relation rel = table_open(relid, NoLock);
    Trigger* existing = find_rule(rel, column);
    if (existing) name = pstrdup(existing->tgname);
    table_close(rel, NoLock);
  }
  if (name == nullptr)
    throw Error(ERRCODE_UNDEFINED_OBJECT, psprintf("no transition rule for column \"%s\" of \"%s\"",
                                                   column, get_rel_name(relid)));
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
  sg::util::spi_exec(
      psprintf("DROP TRIGGER %s ON %s", quote_identifier(name), sg::util::qualified_name(relid)));
  SPI_finish();
  PG_RETURN_VOID();
}
