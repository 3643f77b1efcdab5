<?php
// run.php: the clinic's tests against the test database (test.sh has loaded schema.sql).
declare(strict_types=1);

require_once __DIR__ . '/../src/Clinic.php';
require_once __DIR__ . '/lib.php';

$ROLE_PREFIX = getenv('CLINIC_ROLE_PREFIX') ?: throw new RuntimeException('CLINIC_ROLE_PREFIX is not set');

/** A Clinic on a fresh connection (each forked worker needs its own). */
function clinic(): Clinic
{
    return new Clinic(clinicConnect(), $GLOBALS['ROLE_PREFIX']);
}

const ADMIN = ['role' => 'admin', 'id' => 1];
function doctor(int $id): array { return ['role' => 'doctor', 'id' => $id]; }
function patient(int $id): array { return ['role' => 'patient', 'id' => $id]; }

/** A new slot of doctor $doctorId, on a day of its own. */
function newSlot(Clinic $c, int $doctorId, int $capacity = 1, string $holdTtl = '30 minutes'): int
{
    static $n = 0;
    $n++;
    $day = sprintf('2030-01-%02d', $n);
    return $c->addSlot(ADMIN, $doctorId, "$day 09:00+00", "$day 09:30+00", $capacity, $holdTtl);
}

foreach (['booking', 'roles', 'retry', 'stats'] as $file) {
    require __DIR__ . "/{$file}_test.php";
}
exit(runTests() === 0 ? 0 : 1);
