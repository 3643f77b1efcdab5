<?php
// lib.php: a tiny test runner (no phpunit) and a fork helper for concurrent workers.
declare(strict_types=1);

$GLOBALS['tests'] = [];

function test(string $name, callable $fn): void
{
    $GLOBALS['tests'][] = [$name, $fn];
}

final class AssertionFailed extends Exception
{
}

function check(bool $ok, string $what): void
{
    $GLOBALS['assertions'] = ($GLOBALS['assertions'] ?? 0) + 1;
    if (!$ok) {
        throw new AssertionFailed($what);
    }
}

function assertSame(mixed $expected, mixed $actual, string $what = ''): void
{
    check($expected === $actual, sprintf('%s: expected %s, got %s', $what ?: 'value',
        json_encode($expected), json_encode($actual)));
}

/** Runs $fn, asserts it throws $class, returns the exception. */
function assertThrows(string $class, callable $fn, string $what = ''): Throwable
{
    try {
        $fn();
    } catch (Throwable $e) {
        check($e instanceof $class, sprintf('%s: expected %s, got %s: %s', $what ?: 'call', $class,
            get_class($e), $e->getMessage()));
        return $e;
    }
    check(false, ($what ?: 'call') . ": expected $class, nothing was thrown");
    throw new LogicException('unreachable');
}

/** Runs all tests; returns the number of failures. */
function runTests(): int
{
    $failed = 0;
    foreach ($GLOBALS['tests'] as [$name, $fn]) {
        $t = microtime(true);
        $before = $GLOBALS['assertions'] ?? 0;
        try {
            $fn();
            $n = ($GLOBALS['assertions'] ?? 0) - $before;
            if ($n === 0) {
                throw new AssertionFailed('the test asserted nothing');
            }
            printf("  ok   %s (%d assertions, %.0f ms)\n", $name, $n, 1000 * (microtime(true) - $t));
        } catch (Throwable $e) {
            $failed++;
            printf("  FAIL %s\n       %s: %s\n       at %s:%d\n", $name, get_class($e), $e->getMessage(),
                $e->getFile(), $e->getLine());
        }
    }
    printf("%d tests, %d failed\n", count($GLOBALS['tests']), $failed);
    return $failed;
}

/**
 * Runs each closure in its own forked process (each must open its own connection), all
 * starting at the same instant; returns what each returned, or ['error' => class,
 * 'sqlstate' => ..] for what it threw. Closures must return something json_encode-able.
 */
function inParallel(array $jobs): array
{
    $startAt = microtime(true) + 0.3;
    $pids = [];
    foreach ($jobs as $i => $job) {
        $file = tempnam(sys_get_temp_dir(), 'clinic');
        $pid = pcntl_fork();
        if ($pid === -1) {
            throw new RuntimeException('fork failed');
        }
        if ($pid === 0) {
            try {
                $out = $job($startAt);
            } catch (Throwable $e) {
                $out = ['error' => get_class($e), 'sqlstate' => ClinicError::sqlstateOf($e),
                        'message' => $e->getMessage()];
            }
            file_put_contents($file, json_encode($out));
            // End without running destructors: the parent's PDO connections, inherited by the
            // fork, must not be closed from here.
            posix_kill(posix_getpid(), SIGKILL);
        }
        $pids[$i] = [$pid, $file];
    }
    $results = [];
    foreach ($pids as $i => [$pid, $file]) {
        pcntl_waitpid($pid, $status);
        $results[$i] = json_decode((string) file_get_contents($file), true) ?? ['error' => 'worker died'];
        unlink($file);
    }
    return $results;
}
