<?php
// Retry.php: rerun a whole transaction when PostgreSQL refused it for a concurrency reason.
declare(strict_types=1);

require_once __DIR__ . '/Errors.php';

const RETRYABLE_SQLSTATES = ['40001', '40P01']; // serialization_failure, deadlock_detected

/**
 * Calls $fn($attempt) until it returns, retrying serialization failures and deadlocks with
 * exponential backoff plus jitter (baseDelayMs, 2x, 4x, ...). Any other error is rethrown at once.
 * $onRetry($attempt, $sqlstate) is told about each retry (for logs and tests).
 */
function withRetry(callable $fn, int $attempts = 3, int $baseDelayMs = 50, ?callable $onRetry = null): mixed
{
    for ($attempt = 1; ; $attempt++) {
        try {
            return $fn($attempt);
        } catch (Throwable $e) {
            $state = ClinicError::sqlstateOf($e);
            if ($attempt >= $attempts || !in_array($state, RETRYABLE_SQLSTATES, true)) {
                throw $e;
            }
            if ($onRetry) {
                $onRetry($attempt, $state);
            }
            $delayMs = $baseDelayMs * (2 ** ($attempt - 1));
            usleep(1000 * ($delayMs + random_int(0, $baseDelayMs)));
        }
    }
}
