-- Staff accounts, their offices, their sessions and the sign-in throttle.
-- Portable SQL (see 0001_booking.sql): TEXT and BIGINT only, instants in unix ms.

CREATE TABLE staff (
    -- UUID v7, text.
    id TEXT PRIMARY KEY,
    -- The sign-in handle: lowercase, 3 to 64 of [a-z0-9._-].
    username TEXT NOT NULL,
    -- AES-256-GCM under the Keyring, field "staff.display_name".
    display_name_enc TEXT NOT NULL,
    role TEXT NOT NULL,
    -- Argon2id, PHC string.
    password_hash TEXT NOT NULL,
    -- AES-256-GCM under the Keyring, field "staff.totp_secret".
    totp_secret_enc TEXT NOT NULL,
    -- The last TOTP time step accepted; a code of that step or an earlier one
    -- is refused, so a code works once.
    totp_last_step BIGINT NOT NULL,
    -- 1 active, 0 deactivated.
    active BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    CONSTRAINT staff_username_unique UNIQUE (username),
    CONSTRAINT staff_role_known CHECK (role IN ('clerk', 'supervisor', 'administrator', 'auditor')),
    CONSTRAINT staff_active_flag CHECK (active IN (0, 1))
);

-- The offices one person works for; '*' means every office (so no foreign key
-- to offices).
CREATE TABLE staff_offices (
    staff_id TEXT NOT NULL REFERENCES staff(id),
    office_code TEXT NOT NULL,
    PRIMARY KEY (staff_id, office_code)
);

-- Only SHA-256 of the session token is kept: a copy of this table signs no
-- one in.
CREATE TABLE staff_sessions (
    token_hash TEXT PRIMARY KEY,
    staff_id TEXT NOT NULL REFERENCES staff(id),
    csrf TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    -- The last time the password and a code were entered (sign-in or re-authentication).
    authenticated_at_ms BIGINT NOT NULL
);
CREATE INDEX staff_sessions_staff ON staff_sessions (staff_id);

-- Consecutive failed sign-ins per keyed hash of the username (so unknown
-- usernames are throttled the same way and no username is stored in clear).
CREATE TABLE sign_in_throttle (
    key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    last_failure_ms BIGINT NOT NULL,
    locked_until_ms BIGINT NOT NULL
);
