#!/usr/bin/env bash
# test.sh: clinic-php (PHP 8.2 + PDO pgsql) against slotguard (run by make check).
source "$(dirname "$0")/../lib.bash"
command -v php >/dev/null || fail "php is not installed"
php -r 'exit(extension_loaded("pdo_pgsql") && function_exists("pcntl_fork") ? 0 : 1);' ||
  fail "php needs pdo_pgsql and pcntl"

# Database roles are cluster-wide: name them after the test database, drop them at exit.
export CLINIC_ROLE_PREFIX=$DB
ROLES="\"${DB}_doctor\", \"${DB}_patient\", \"${DB}_admin\""
drop_roles() {
  sql -c "DROP OWNED BY $ROLES" 2>/dev/null || true
  psql -X -q -d postgres -c "DROP ROLE IF EXISTS $ROLES" >/dev/null
}
CLEANUP_HOOK=drop_roles

make_db
sql -v role_doctor="${DB}_doctor" -v role_patient="${DB}_patient" -v role_admin="${DB}_admin" \
  -f "$APP_DIR/schema.sql" >/dev/null || fail "schema.sql failed"
php "$APP_DIR/tests/run.php" || fail "clinic-php tests failed"
