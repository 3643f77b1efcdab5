<?php
// withRetry against real serialization failures (40001) and real deadlocks (40P01).
declare(strict_types=1);

test('withRetry: a REPEATABLE READ edit whose row changed under it gets 40001; the retry wins', function () {
    $c = clinic();
    $other = clinic(); // a second staff member, on their own connection
    $slot = newSlot($c, 1, 1);
    $a = $c->book(patient(10), $slot);
    $retried = [];
    $row = withRetry(function (int $attempt) use ($c, $other, $a) {
        return $c->as(ADMIN, function (PDO $pdo) use ($attempt, $other, $a) {
            $st = $pdo->prepare('SELECT notes, version FROM appointments WHERE id = ?'); // the snapshot
            $st->execute([$a['id']]);
            $read = $st->fetch();
            if ($attempt === 1) { // the other one saves between our read and our write
                $other->editNotes(doctor(1), $a['id'], (int) $read['version'], 'bp 120/80');
            }
            return Clinic::updateVersioned($pdo, $a['id'], (int) $read['version'],
                ['notes' => ltrim($read['notes'] . '; x-ray ok', '; ')]);
        }, 'REPEATABLE READ');
    }, 3, 10, function (int $attempt, string $state) use (&$retried) { $retried[] = $state; });
    assertSame(['40001'], $retried, 'retried once, on a serialization failure');
    assertSame('bp 120/80; x-ray ok', $row['notes'], 'no edit is lost');
    assertSame('bp 120/80; x-ray ok', $c->find(ADMIN, $a['id'])['notes'], 'stored');
});

test('withRetry: a real deadlock between two forked workers is retried and both commit', function () {
    $c = clinic();
    $slot = newSlot($c, 2, 2);
    $x = $c->book(patient(11), $slot)['id'];
    $y = $c->book(patient(12), $slot)['id'];
    // worker: add a mark to two appointments, in opposite orders in the two workers
    $worker = fn(int $first, int $second, string $mark) => function (float $startAt) use ($first, $second, $mark) {
        $w = clinic();
        $w->pdo->exec("SET deadlock_timeout = '100ms'");
        $retried = [];
        time_sleep_until($startAt);
        $attempts = withRetry(fn(int $attempt) => $w->as(ADMIN, function (PDO $pdo) use ($attempt, $first, $second, $mark) {
            $st = $pdo->prepare('UPDATE appointments SET notes = notes || ? WHERE id = ?');
            $st->execute([$mark, $first]);
            if ($attempt === 1) {
                usleep(400_000); // both workers now hold their first row
            }
            $st->execute([$mark, $second]);
            return $attempt;
        }), 5, 20, function (int $attempt, string $state) use (&$retried) { $retried[] = $state; });
        return ['attempts' => $attempts, 'retried' => $retried];
    };
    $results = inParallel([$worker($x, $y, 'A'), $worker($y, $x, 'B')]);
    check(isset($results[0]['attempts'], $results[1]['attempts']), 'both committed: ' . json_encode($results));
    assertSame(['40P01'], array_merge($results[0]['retried'], $results[1]['retried']),
        'one of them was the deadlock victim and retried');
    $notes = $c->pdo->query("SELECT notes FROM appointments WHERE id IN ($x, $y) ORDER BY id")->fetchAll(PDO::FETCH_COLUMN);
    $sorted = array_map(function ($n) { $s = str_split($n); sort($s); return implode($s); }, $notes);
    assertSame(['AB', 'AB'], $sorted, 'both marks on both rows');
});

test('withRetry: other errors are not retried; retryable ones stop after the last attempt', function () {
    $c = clinic();
    $slot = newSlot($c, 1, 1);
    $c->book(patient(15), $slot);
    $calls = 0;
    assertThrows(SoldOut::class, function () use ($c, $slot, &$calls) {
        withRetry(function () use ($c, $slot, &$calls) {
            $calls++;
            return $c->as(patient(16), fn(PDO $pdo) => $pdo->query("SELECT slotguard.reserve($slot, 'patient:16')"));
        }, 3, 1);
    }, 'sold out');
    assertSame(1, $calls, 'SoldOut is not retried');

    $calls = 0;
    $e = assertThrows(PDOException::class, function () use ($c, &$calls) {
        withRetry(function () use ($c, &$calls) {
            $calls++;
            $c->pdo->exec("DO \$\$ BEGIN RAISE EXCEPTION 'always' USING ERRCODE = '40001'; END \$\$");
        }, 3, 1);
    }, 'always 40001');
    assertSame(3, $calls, 'three attempts');
    assertSame('40001', ClinicError::sqlstateOf($e), 'the last error is rethrown');
});
