<?php
// Booking a doctor's slot: never beyond capacity, one live booking per patient per slot.
declare(strict_types=1);

test('10 patients race for a slot of 3: exactly 3 are booked, 7 get SoldOut', function () {
    $c = clinic();
    $slot = newSlot($c, 1, 3);
    $jobs = [];
    foreach (range(1, 10) as $p) {
        $jobs[] = function (float $startAt) use ($slot, $p) {
            $w = clinic();
            time_sleep_until($startAt);
            $retried = [];
            $id = $w->book(patient($p), $slot, 'checkup', function ($n, $state) use (&$retried) { $retried[] = $state; })['id'];
            return ['id' => $id, 'retried' => $retried];
        };
    }
    $results = inParallel($jobs);
    $booked = array_filter($results, fn($r) => isset($r['id']));
    $soldOut = array_filter($results, fn($r) => ($r['error'] ?? '') === SoldOut::class);
    assertSame(3, count($booked), 'booked (' . json_encode($results) . ')');
    assertSame(7, count($soldOut), 'sold out (' . json_encode($results) . ')');
    // slotguard's buyers never deadlock each other: not one booking needed the retry.
    $retries = array_merge(...array_map(fn($r) => $r['retried'] ?? [], $results));
    assertSame([], $retries, 'bookings retried after a deadlock or serialization failure');
    assertSame(['capacity' => 3, 'confirmed' => 0, 'held' => 3, 'free' => 0], $c->availability($slot), 'availability');
    // every appointment points at its own live slotguard booking of its own patient
    $rows = $c->pdo->query("SELECT a.patient_id, b.holder, b.status FROM appointments a
                              JOIN slotguard.bookings b ON b.id = a.booking_id WHERE a.slot_id = $slot")->fetchAll();
    assertSame(3, count($rows), 'appointments');
    foreach ($rows as $r) {
        assertSame('patient:' . $r['patient_id'], $r['holder'], 'holder');
        assertSame('pending', $r['status'], 'booking status');
    }
});

test('the same patient booking one slot 4 times at once: 1 booking, 3 AlreadyBooked (SG003)', function () {
    $c = clinic();
    $slot = newSlot($c, 2, 5);
    $jobs = array_fill(0, 4, function (float $startAt) use ($slot) {
        $w = clinic();
        time_sleep_until($startAt);
        return $w->book(patient(20), $slot)['id'];
    });
    $results = inParallel($jobs);
    assertSame(1, count(array_filter($results, 'is_int')), 'booked (' . json_encode($results) . ')');
    $dups = array_filter($results, fn($r) => ($r['error'] ?? '') === AlreadyBooked::class);
    assertSame(3, count($dups), 'already booked');
    assertSame('SG003', array_values($dups)[0]['sqlstate'], 'sqlstate');
    $e = assertThrows(AlreadyBooked::class, fn() => $c->book(patient(20), $slot), 'a later retry');
    assertSame(409, $e->httpStatus, 'http status');
    assertSame(4, $c->availability($slot)['free'], 'free seats');
});

test('a cancelled appointment frees its seat for the next patient', function () {
    $c = clinic();
    $slot = newSlot($c, 1, 1);
    $a = $c->book(patient(1), $slot);
    assertThrows(SoldOut::class, fn() => $c->book(patient(2), $slot), 'second patient');
    $c->setStatus(patient(1), $a['id'], 'cancelled');
    $b = $c->book(patient(2), $slot);
    assertSame(2, $b['patient_id'], 'new appointment');
    $st = $c->pdo->query("SELECT status FROM slotguard.bookings WHERE id = {$a['booking_id']}");
    assertSame('cancelled', $st->fetchColumn(), 'old booking');
    // the patient who cancelled may book again once a seat is free (one live booking per holder)
    assertThrows(SoldOut::class, fn() => $c->book(patient(1), $slot), 'first patient again');
});

test('a doctor confirming after the hold expired gets HoldExpired and nothing changes', function () {
    $c = clinic();
    $slot = newSlot($c, 1, 1, '1 second');
    $a = $c->book(patient(3), $slot);
    usleep(1_200_000);
    $e = assertThrows(HoldExpired::class, fn() => $c->setStatus(doctor(1), $a['id'], 'confirmed'));
    assertSame('SG004', $e->sqlstate, 'sqlstate');
    assertSame('pending', $c->find(ADMIN, $a['id'])['status'], 'appointment status (rolled back)');
    assertSame(1, $c->availability($slot)['free'], 'the dead hold frees its seat');
});
