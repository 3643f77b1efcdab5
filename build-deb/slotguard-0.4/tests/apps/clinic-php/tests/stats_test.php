<?php
// The counters in slotguard.stats replace the original team's hand-kept "lock statistics".
declare(strict_types=1);

test('slotguard.stats counters move by the expected amounts', function () {
    $c = clinic();
    $slot = newSlot($c, 1, 1);
    $delta = function (array $before, array $after, string $scope, string $object) {
        $out = [];
        foreach ($after[$scope][$object] ?? [] as $metric => $v) {
            $out[$metric] = $v - ($before[$scope][$object][$metric] ?? 0);
        }
        ksort($out);
        return $out;
    };
    $before = $c->stats(ADMIN);
    $a = $c->book(patient(13), $slot);                                         // reservation
    assertThrows(SoldOut::class, fn() => $c->book(patient(14), $slot));        // sold out
    assertThrows(AlreadyBooked::class, fn() => $c->book(patient(13), $slot));  // sold out (one per holder)
    $c->setStatus(doctor(1), $a['id'], 'confirmed');                           // confirmation, versioned update
    $v = (int) $c->find(ADMIN, $a['id'])['version'];
    $c->editNotes(doctor(1), $a['id'], $v, 'fasting');                         // versioned update
    assertThrows(VersionConflict::class, fn() => $c->editNotes(ADMIN, $a['id'], $v, 'x')); // conflict
    $c->setStatus(patient(13), $a['id'], 'cancelled');                         // cancellation, versioned update
    $after = $c->stats(ADMIN);

    assertSame(1, $after['global']['']['counters_enabled'], 'counters enabled');
    assertSame(['cancellations' => 1, 'confirmations' => 1, 'expirations' => 0, 'reservations' => 1, 'sold_out' => 2],
        $delta($before, $after, 'slot', (string) $slot), 'slot counters');
    assertSame(['version_conflicts' => 1, 'versioned_updates' => 3],
        $delta($before, $after, 'table', 'appointments'), 'table counters');
});
