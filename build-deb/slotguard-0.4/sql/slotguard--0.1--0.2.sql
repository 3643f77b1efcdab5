-- slotguard 0.1 -> 0.2: slotguard.booking(booking_id).
\echo Use "ALTER EXTENSION slotguard UPDATE TO '0.2'" to load this file. \quit

-- slotguard.booking(booking_id): one booking as its holder would see it now, without writing: a
-- hold whose expires_at has passed reads as 'expired' whether or not the sweep has marked it (the
-- rule reserve and availability use). Runs with the extension owner's rights like confirm and
-- cancel, so an application needs no SELECT on slotguard.bookings; a missing booking is SG002.
CREATE FUNCTION slotguard.booking(booking_id bigint) RETURNS slotguard.bookings
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    b slotguard.bookings;
BEGIN
    IF booking_id IS NULL THEN
        RAISE EXCEPTION 'booking_id must not be NULL' USING ERRCODE = '22023';
    END IF;
    SELECT * INTO b FROM slotguard.bookings AS k WHERE k.id OPERATOR(pg_catalog.=) booking_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'booking % does not exist', booking_id USING ERRCODE = 'SG002';
    END IF;
    IF b.status OPERATOR(pg_catalog.=) 'pending'
       AND b.expires_at OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp() THEN
        b.status := 'expired';
    END IF;
    RETURN b;
END
$$;
