<?php
// Errors.php: slotguard's SQLSTATEs mapped to application errors (with an HTTP status), instead
// of the original team's strpos($e->getMessage(), 'Deadlock') checks.
declare(strict_types=1);

class ClinicError extends RuntimeException
{
    public int $httpStatus = 500;
    public string $sqlstate = '';
    public ?string $detail = null;
    public ?string $hint = null;

    /** The SQLSTATE of a PDOException (or of a ClinicError wrapping one), '' if none. */
    public static function sqlstateOf(Throwable $e): string
    {
        if ($e instanceof ClinicError) {
            return $e->sqlstate;
        }
        if ($e instanceof PDOException) {
            return (string) ($e->errorInfo[0] ?? $e->getCode());
        }
        return '';
    }

    /** Maps a driver error to the app's error classes by SQLSTATE. */
    public static function from(Throwable $e): Throwable
    {
        if (!$e instanceof PDOException) {
            return $e;
        }
        $state = self::sqlstateOf($e);
        // pdo_pgsql gives one text: "ERROR:  msg\nDETAIL:  ...\nHINT:  ..."
        $text = (string) ($e->errorInfo[2] ?? $e->getMessage());
        $field = fn(string $name) => preg_match('/^' . $name . ':\s+(.*)$/m', $text, $m) ? $m[1] : null;
        $message = preg_match('/^ERROR:\s+(.*)$/m', $text, $m) ? $m[1] : $text;
        $class = match ($state) {
            'SG001' => VersionConflict::class,
            'SG002' => NotFound::class,
            // one_per_holder and "no seat left" share SG003; only the message tells them apart
            'SG003' => str_contains($message, 'already has a booking') ? AlreadyBooked::class : SoldOut::class,
            'SG004' => HoldExpired::class,
            'SG005' => InvalidTransition::class,
            default => ClinicError::class,
        };
        $err = new $class($message, 0, $e);
        $err->sqlstate = $state;
        $err->detail = $field('DETAIL');
        $err->hint = $field('HINT');
        if ($err instanceof InvalidTransition) {
            $err->parseHint();
        }
        return $err;
    }
}

class VersionConflict extends ClinicError { public int $httpStatus = 409; }
class NotFound extends ClinicError { public int $httpStatus = 404; }
class SoldOut extends ClinicError { public int $httpStatus = 409; }
class AlreadyBooked extends ClinicError { public int $httpStatus = 409; }
class HoldExpired extends ClinicError { public int $httpStatus = 410; }

class InvalidTransition extends ClinicError
{
    public int $httpStatus = 422;
    /** @var string[] the states the acting role may move to from the current one */
    public array $allowed = [];

    public function parseHint(): void
    {
        // HINT (a fixed wording, docs/sql-api.md "Transition rules"):
        //   'Allowed next states from "pending": confirmed, rejected.'  /  '...: none.'
        if ($this->hint !== null && preg_match('/^Allowed next states from "[^"]*": (.*)\.$/', $this->hint, $m)
            && $m[1] !== 'none') {
            $this->allowed = array_map('trim', explode(',', $m[1]));
        }
        $this->message = $this->getMessage() . ' (allowed next states: '
            . ($this->allowed ? implode(', ', $this->allowed) : 'none') . ')';
    }
}
