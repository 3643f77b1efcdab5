<?php
// Status changes per role (transition rules) and ownership (row-level security).
declare(strict_types=1);

test('each role may make only its own status changes; SG005 lists the allowed next states', function () {
    $c = clinic();
    $slot = newSlot($c, 1, 2);
    $a = $c->book(patient(5), $slot);
    assertSame('pending', $a['status'], 'initial status');

    $e = assertThrows(InvalidTransition::class, fn() => $c->setStatus(patient(5), $a['id'], 'confirmed'),
        'patient confirms');
    assertSame('SG005', $e->sqlstate, 'sqlstate');
    assertSame(422, $e->httpStatus, 'http status');
    assertSame(['cancelled'], $e->allowed, 'patient may only cancel a pending appointment');
    check(str_contains($e->getMessage(), 'allowed next states: cancelled'), 'message: ' . $e->getMessage());

    $row = $c->setStatus(doctor(1), $a['id'], 'confirmed');
    assertSame('confirmed', $row['status'], 'doctor confirms');
    $st = $c->pdo->query("SELECT status FROM slotguard.bookings WHERE id = {$a['booking_id']}");
    assertSame('confirmed', $st->fetchColumn(), 'the slotguard booking is confirmed with it');
    assertSame(['capacity' => 2, 'confirmed' => 1, 'held' => 0, 'free' => 1], $c->availability($slot), 'availability');

    $e = assertThrows(InvalidTransition::class, fn() => $c->setStatus(doctor(1), $a['id'], 'cancelled'),
        'doctor cancels a confirmed appointment');
    assertSame(['completed', 'no_show'], $e->allowed, 'doctor from confirmed');

    $c->setStatus(doctor(1), $a['id'], 'completed');
    $e = assertThrows(InvalidTransition::class, fn() => $c->setStatus(ADMIN, $a['id'], 'pending'),
        'admin reopens a completed appointment');
    assertSame([], $e->allowed, 'nothing after completed');

    // the admin may cancel what the doctor may not
    $b = $c->book(patient(6), $slot);
    $c->setStatus(doctor(1), $b['id'], 'confirmed');
    assertSame('cancelled', $c->setStatus(ADMIN, $b['id'], 'cancelled')['status'], 'admin cancels');
    assertSame(['capacity' => 2, 'confirmed' => 1, 'held' => 0, 'free' => 1], $c->availability($slot),
        'the completed visit keeps its seat, the cancelled one is free');

    // the audit trail, written by the database, names the app user and role of each change
    $audit = $c->pdo->query("SELECT actor, actor_role, changes->'status'->>1 AS new_status
                               FROM slotguard.audit
                              WHERE tbl = 'public.appointments' AND row_key = '{\"id\": {$a['id']}}'
                              ORDER BY id")->fetchAll();
    assertSame([
        ['actor' => 'patient:5', 'actor_role' => 'patient', 'new_status' => 'pending'],
        ['actor' => 'doctor:1', 'actor_role' => 'doctor', 'new_status' => 'confirmed'],
        ['actor' => 'doctor:1', 'actor_role' => 'doctor', 'new_status' => 'completed'],
    ], $audit, 'audit');
});

test("RLS: a doctor cannot change another doctor's appointment (0 rows, SG002)", function () {
    $c = clinic();
    $slot = newSlot($c, 1, 1);
    $a = $c->book(patient(7), $slot);

    // the app's path: UPDATE ... RETURNING finds nothing → NotFound
    $e = assertThrows(NotFound::class, fn() => $c->setStatus(doctor(2), $a['id'], 'confirmed'), 'doctor 2 confirms');
    assertSame(404, $e->httpStatus, 'http status');
    // a raw UPDATE by doctor 2 affects 0 rows; by doctor 1, 1 row
    $update = fn(int $doctorId) => $c->as(doctor($doctorId),
        fn(PDO $pdo) => $pdo->exec("UPDATE appointments SET notes = 'seen' WHERE id = {$a['id']}"));
    assertSame(0, $update(2), "doctor 2's UPDATE");
    assertSame(1, $update(1), "doctor 1's UPDATE");
    // update_versioned runs with the caller's rights: the hidden row is not found
    $version = (int) $c->find(ADMIN, $a['id'])['version'];
    $e = assertThrows(NotFound::class, fn() => $c->editNotes(doctor(2), $a['id'], $version, 'hijacked'),
        "doctor 2's update_versioned");
    assertSame('SG002', $e->sqlstate, 'sqlstate');
    assertSame(null, $c->find(doctor(2), $a['id']), 'doctor 2 does not even see it');
    assertSame(null, $c->find(patient(8), $a['id']), 'nor does another patient');
    $row = $c->find(ADMIN, $a['id']);
    assertSame(['pending', 'seen'], [$row['status'], $row['notes']], 'unchanged by doctor 2');
    // and the owner can
    assertSame('ok', $c->editNotes(doctor(1), $a['id'], $version, 'ok')['notes'], "doctor 1's edit");
});

test('staff edits are optimistic: a stale version gets VersionConflict', function () {
    $c = clinic();
    $slot = newSlot($c, 2, 1);
    $a = $c->book(patient(9), $slot);
    $read = $c->find(doctor(2), $a['id']);
    $c->editNotes(ADMIN, $a['id'], (int) $read['version'], 'allergic to penicillin');
    $e = assertThrows(VersionConflict::class,
        fn() => $c->editNotes(doctor(2), $a['id'], (int) $read['version'], 'all fine'), 'stale edit');
    assertSame('SG001', $e->sqlstate, 'sqlstate');
    check(str_contains((string) $e->detail, 'expected version ' . $read['version']), 'detail: ' . $e->detail);
    assertSame('allergic to penicillin', $c->find(ADMIN, $a['id'])['notes'], 'the first edit is kept');
});
