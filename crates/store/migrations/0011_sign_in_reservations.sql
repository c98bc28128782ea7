-- Sign-in attempts are counted when they start (issue 12), in one statement
-- that also says whether the attempt may be checked, so concurrent attempts
-- (on one server or several sharing this database) cannot all read the same
-- count before any of them writes it.

-- The throttle's keys are now per account and client address (a keyed hash of
-- both). `failures` counts every attempt since the last success, counted at
-- its start; `last_failure_ms` is when the last one started; this column says
-- whether that last attempt was let through to the password check (1) or
-- refused by the lock or the back-off (0).
ALTER TABLE sign_in_throttle ADD COLUMN last_admitted BIGINT NOT NULL DEFAULT 1;

-- The account-wide ceiling: password checks of one account (keyed hash of
-- the username) within a fixed window, from every address together.
CREATE TABLE sign_in_ceiling (
    key TEXT PRIMARY KEY,
    window_start_ms BIGINT NOT NULL,
    checks BIGINT NOT NULL,
    -- 1 when the last reservation was granted, 0 when the ceiling refused it.
    last_admitted BIGINT NOT NULL,
    CONSTRAINT sign_in_ceiling_checks_not_negative CHECK (checks >= 0)
);
