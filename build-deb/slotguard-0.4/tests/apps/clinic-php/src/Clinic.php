<?php
// Clinic.php: booking doctors' slots and moving appointments through their states, with the
// concurrency rules enforced by slotguard and PostgreSQL instead of lockForUpdate() code.
declare(strict_types=1);

require_once __DIR__ . '/Errors.php';
require_once __DIR__ . '/Retry.php';

/** A PDO connection to the database named by the libpq variables (PDO itself reads none). */
function clinicConnect(): PDO
{
    $dsn = sprintf('pgsql:host=%s;port=%s;dbname=%s;user=%s',
        getenv('PGHOST'), getenv('PGPORT') ?: '5432', getenv('PGDATABASE'), getenv('PGUSER'));
    return new PDO($dsn, null, null, [
        PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
        PDO::ATTR_DEFAULT_FETCH_MODE => PDO::FETCH_ASSOC,
    ]);
}

final class Clinic
{
    /** @param string $rolePrefix database roles are "<prefix>_doctor", "_patient", "_admin" */
    public function __construct(public readonly PDO $pdo, private string $rolePrefix)
    {
    }

    /**
     * Runs $fn($pdo) in one transaction on behalf of an app user ['role' => 'doctor', 'id' => 1]:
     * as that role's database role (row-level security), with slotguard.actor / actor_role set
     * for the transition rules and the audit. Errors come back as ClinicError subclasses.
     */
    public function as(array $user, callable $fn, ?string $isolation = null): mixed
    {
        $role = $user['role'];
        if (!in_array($role, ['doctor', 'patient', 'admin'], true)) {
            throw new InvalidArgumentException("unknown role $role");
        }
        $pdo = $this->pdo;
        $pdo->beginTransaction();
        try {
            if ($isolation !== null) {
                $pdo->exec("SET TRANSACTION ISOLATION LEVEL $isolation");
            }
            $pdo->exec('SET LOCAL ROLE "' . str_replace('"', '""', "{$this->rolePrefix}_$role") . '"');
            $pdo->prepare("SELECT set_config('slotguard.actor', :actor, true),
                                  set_config('slotguard.actor_role', :role, true),
                                  set_config('app.doctor_id', :doctor, true),
                                  set_config('app.patient_id', :patient, true)")
                ->execute([
                    'actor' => "$role:{$user['id']}",
                    'role' => $role,
                    'doctor' => $role === 'doctor' ? (string) $user['id'] : '',
                    'patient' => $role === 'patient' ? (string) $user['id'] : '',
                ]);
            $result = $fn($pdo);
            $pdo->commit();
            return $result;
        } catch (Throwable $e) {
            if ($pdo->inTransaction()) {
                $pdo->rollBack();
            }
            throw ClinicError::from($e);
        }
    }

    /** Admin: opens a slot of a doctor's schedule for $capacity patients. */
    public function addSlot(array $admin, int $doctorId, string $startsAt, string $endsAt,
                            int $capacity = 1, string $holdTtl = '30 minutes'): int
    {
        return $this->as($admin, function (PDO $pdo) use ($doctorId, $startsAt, $endsAt, $capacity, $holdTtl) {
            $st = $pdo->prepare("SELECT slotguard.create_slot(:cap, :starts, :ends, resource => :res,
                                        hold_ttl => :ttl, one_per_holder => true)");
            $st->execute(['cap' => $capacity, 'starts' => $startsAt, 'ends' => $endsAt,
                          'res' => "doctor:$doctorId", 'ttl' => $holdTtl]);
            $slotId = (int) $st->fetchColumn();
            $pdo->prepare('INSERT INTO doctor_slots (slot_id, doctor_id) VALUES (?, ?)')
                ->execute([$slotId, $doctorId]);
            return $slotId;
        });
    }

    /**
     * Patient: books a seat of the slot. slotguard.reserve places the hold atomically (never
     * beyond capacity, one live booking per patient per slot); the appointment references it.
     * Throws SoldOut or AlreadyBooked.
     */
    public function book(array $patient, int $slotId, string $reason = '', ?callable $onRetry = null): array
    {
        // a deadlock or serialization failure is retried as a whole transaction
        return withRetry(fn() => $this->as($patient, function (PDO $pdo) use ($patient, $slotId, $reason) {
            $st = $pdo->prepare('SELECT id FROM slotguard.reserve(:slot, :holder)');
            $st->execute(['slot' => $slotId, 'holder' => "patient:{$patient['id']}"]);
            $bookingId = (int) $st->fetchColumn();
            $st = $pdo->prepare('INSERT INTO appointments (slot_id, booking_id, doctor_id, patient_id, reason)
                                 SELECT slot_id, :booking, doctor_id, :patient, :reason
                                   FROM doctor_slots WHERE slot_id = :slot
                                 RETURNING *');
            $st->execute(['booking' => $bookingId, 'patient' => $patient['id'], 'reason' => $reason,
                          'slot' => $slotId]);
            return $st->fetch();
        }), 5, 20, $onRetry);
    }

    /**
     * Moves an appointment to $status. The transition rule decides whether the user's role may
     * (InvalidTransition, listing the allowed states); row-level security hides other doctors'
     * and patients' appointments (NotFound). The slotguard booking follows: confirmed →
     * slotguard.confirm (HoldExpired if the hold ran out), rejected/cancelled → slotguard.cancel
     * (the seat is free again).
     */
    public function setStatus(array $user, int $appointmentId, string $status): array
    {
        return $this->as($user, function (PDO $pdo) use ($appointmentId, $status) {
            $st = $pdo->prepare('UPDATE appointments SET status = :status WHERE id = :id RETURNING *');
            $st->execute(['status' => $status, 'id' => $appointmentId]);
            $row = $st->fetch();
            if ($row === false) {
                throw new NotFound("appointment $appointmentId not found");
            }
            $sync = match ($status) {
                'confirmed' => 'slotguard.confirm',
                'rejected', 'cancelled' => 'slotguard.cancel',
                default => null,
            };
            if ($sync) {
                $pdo->prepare("SELECT status FROM $sync(?)")->execute([$row['booking_id']]);
            }
            return $row;
        });
    }

    /** Staff: edits the notes of the appointment version they read (VersionConflict if stale). */
    public function editNotes(array $user, int $appointmentId, int $version, string $notes,
                              ?string $isolation = null): array
    {
        return $this->as($user, fn(PDO $pdo) => self::updateVersioned($pdo, $appointmentId, $version, ['notes' => $notes]),
            $isolation);
    }

    public static function updateVersioned(PDO $pdo, int $appointmentId, int $version, array $changes): array
    {
        $st = $pdo->prepare("SELECT slotguard.update_versioned('appointments', CAST(:key AS jsonb),
                                   CAST(:version AS bigint), CAST(:changes AS jsonb))");
        $st->execute(['key' => json_encode($appointmentId), 'version' => $version,
                      'changes' => json_encode($changes)]);
        return json_decode($st->fetchColumn(), true);
    }

    public function find(array $user, int $appointmentId): ?array
    {
        return $this->as($user, function (PDO $pdo) use ($appointmentId) {
            $st = $pdo->prepare('SELECT * FROM appointments WHERE id = ?');
            $st->execute([$appointmentId]);
            return $st->fetch() ?: null;
        });
    }

    /** ['capacity' => .., 'confirmed' => .., 'held' => .., 'free' => ..] of a slot. */
    public function availability(int $slotId): array
    {
        $st = $this->pdo->prepare('SELECT * FROM slotguard.availability(?)');
        $st->execute([$slotId]);
        return array_map('intval', $st->fetch());
    }

    /** slotguard's counters as [scope][object][metric] => value (server-wide, since start). */
    public function stats(array $admin): array
    {
        return $this->as($admin, function (PDO $pdo) {
            $out = [];
            foreach ($pdo->query('SELECT scope, object, metric, value FROM slotguard.stats') as $r) {
                $out[$r['scope']][$r['object']][$r['metric']] = (int) $r['value'];
            }
            return $out;
        });
    }
}
