// util: the small PostgreSQL-style helpers declared in util.hpp (catalog look-ups, a row's key as
// JSON, SPI, running as the audit table's owner, slotguard's own locks), called by the SQL
// functions and triggers of every other file.
#include "util.hpp"

#include "boundary.hpp"

namespace sg::util {

char check_table(Oid relid, bool require_owner) {
  const char relkind = get_rel_relkind(relid);
  if (relkind == '\0')
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                    errmsg("relation with OID %u does not exist", relid)));
  if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("\"%s\" is not a table", get_rel_name(relid))));
  if (require_owner && !pg_class_ownercheck(relid, GetUserId()))
    aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
  return relkind;
}

char* qualified_name(Oid relid) {
  return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
                                    get_rel_name(relid));
}

TriggerData* trigger_data(FunctionCallInfo fcinfo, const char* function) {
  if (!CALLED_AS_TRIGGER(fcinfo))
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                psprintf("%s called outside a trigger", function));
  return reinterpret_cast<TriggerData*>(fcinfo->context);
}

HTAB* backend_hash(const char* name, long nelem, Size keysize, Size entrysize) {
  HASHCTL info;
  info.keysize = keysize;
  info.entrysize = entrysize;
  info.hcxt = TopMemoryContext;
  return hash_create(name, nelem, &info, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

Trigger* find_trigger(Relation rel, const char* name) {
  TriggerDesc* desc = rel->trigdesc;
  if (desc == nullptr) return nullptr;
  for (int i = 0; i < desc->numtriggers; i++)
    if (strcmp(desc->triggers[i].tgname, name) == 0) return &desc->triggers[i];
  return nullptr;
}

void append_json_value(StringInfo buf, Datum value, Oid type) {
  Oid out;
  bool varlena;
  getTypeOutputInfo(type, &out, &varlena);
  char* text = OidOutputFunctionCall(out, value);
  switch (getBaseType(type)) {
    case INT2OID:
    case INT4OID:
    case INT8OID:
    case OIDOID:
      appendStringInfoString(buf, text);
      break;
    case NUMERICOID:
    case FLOAT4OID:
    case FLOAT8OID:
      // NaN and Infinity are not JSON numbers.
      if (strspn(text, "0123456789+-.eE") == strlen(text))
        appendStringInfoString(buf, text);
      else
        escape_json(buf, text);
      break;
    case BOOLOID:
      appendStringInfoString(buf, text[0] == 't' ? "true" : "false");
      break;
    default:
      escape_json(buf, text);
  }
}

char* row_key_json(Relation rel, HeapTuple tuple) {
  Bitmapset* pk = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);
  if (pk == nullptr) return nullptr;
  TupleDesc desc = RelationGetDescr(rel);
  StringInfoData buf;
  initStringInfo(&buf);
  appendStringInfoChar(&buf, '{');
  int member = -1;
  bool first = true;
  while ((member = bms_next_member(pk, member)) >= 0) {
    const AttrNumber attnum = member + FirstLowInvalidHeapAttributeNumber;
    Form_pg_attribute att = TupleDescAttr(desc, attnum - 1);
    if (!first) appendStringInfoString(&buf, ", ");
    first = false;
    escape_json(&buf, NameStr(att->attname));
    appendStringInfoString(&buf, ": ");
    bool isnull;
    Datum value = heap_getattr(tuple, attnum, desc, &isnull);
    if (isnull)
      appendStringInfoString(&buf, "null");
    else
      append_json_value(&buf, value, att->atttypid);
  }
  appendStringInfoChar(&buf, '}');
  return buf.data;
}

char* operator_sql(Oid opr) {
  HeapTuple tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opr));
  if (!HeapTupleIsValid(tup)) elog(ERROR, "cache lookup failed for operator %u", opr);
  auto* form = reinterpret_cast<Form_pg_operator>(GETSTRUCT(tup));
  char* sql = psprintf("OPERATOR(%s.%s)", quote_identifier(get_namespace_name(form->oprnamespace)),
                       NameStr(form->oprname));
  ReleaseSysCache(tup);
  return sql;
}

void spi_exec(const char* sql) {
  const int rc = SPI_execute(sql, false, 0);
  if (rc < 0) elog(ERROR, "SPI_execute failed (%s): %s", SPI_result_code_string(rc), sql);
}

Oid audit_owner() {
  const Oid relid = get_relname_relid("audit", get_namespace_oid("slotguard", false));
  HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
  if (!HeapTupleIsValid(tup))
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                    errmsg("relation \"slotguard.audit\" does not exist")));
  const Oid owner = reinterpret_cast<Form_pg_class>(GETSTRUCT(tup))->relowner;
  ReleaseSysCache(tup);
  return owner;
}

void OwnerScope::enter(Oid owner) {
  GetUserIdAndSecContext(&saved_user, &saved_context);
  SetUserIdAndSecContext(owner, saved_context | SECURITY_LOCAL_USERID_CHANGE);
}

void OwnerScope::restore() const {
  SetUserIdAndSecContext(saved_user, saved_context);
}

void lock_xact(LockClass klass, uint64 key) {
  LOCKTAG tag;
  SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, static_cast<uint32>(key >> 32), static_cast<uint32>(key),
                       static_cast<uint16>(klass));
  (void)LockAcquire(&tag, ExclusiveLock, false, false);
}

}  // namespace sg::util
