-- Portable SQL: the same file runs on SQLite and PostgreSQL through sqlx::Any.
-- Only TEXT and BIGINT columns (Any reads nothing else on both); instants are
-- unix milliseconds; personal data is AES-256-GCM ciphertext in base64 TEXT.

CREATE TABLE offices (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    city TEXT NOT NULL,
    country TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    -- Seven `HH:MM-HH:MM;...` day specs, Monday first, joined by '|'.
    hours TEXT NOT NULL,
    counters BIGINT NOT NULL,
    service_minutes BIGINT NOT NULL,
    slot_minutes BIGINT NOT NULL,
    horizon_days BIGINT NOT NULL
);

CREATE TABLE closures (
    office_code TEXT NOT NULL REFERENCES offices(code),
    day TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (office_code, day)
);

-- The seats taken in each slot that has had a booking. The CHECK is what makes
-- overbooking impossible: a booking adds its seats with one UPDATE, and the
-- database refuses the row that would pass the capacity.
CREATE TABLE slot_seats (
    office_code TEXT NOT NULL REFERENCES offices(code),
    start_ms BIGINT NOT NULL,
    capacity BIGINT NOT NULL,
    booked BIGINT NOT NULL,
    CONSTRAINT seats_within_capacity CHECK (booked >= 0 AND booked <= capacity),
    PRIMARY KEY (office_code, start_ms)
);

CREATE TABLE bookings (
    id TEXT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    office_code TEXT NOT NULL REFERENCES offices(code),
    start_ms BIGINT NOT NULL,
    seats BIGINT NOT NULL,
    -- active | cancelled
    status TEXT NOT NULL,
    email_enc TEXT NOT NULL,
    phone_enc TEXT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX bookings_slot ON bookings (office_code, start_ms);

CREATE TABLE applicants (
    booking_id TEXT NOT NULL REFERENCES bookings(id),
    position BIGINT NOT NULL,
    -- Keyed hash (HMAC-SHA256) of the person's identity: lookups without clear text.
    doc_key TEXT NOT NULL,
    document_type TEXT NOT NULL,
    document_number_enc TEXT NOT NULL,
    surnames_enc TEXT NOT NULL,
    given_names_enc TEXT NOT NULL,
    birth_date_enc TEXT NOT NULL,
    PRIMARY KEY (booking_id, position)
);
CREATE INDEX applicants_doc_key ON applicants (doc_key);

-- One row per person who holds an active booking: the primary key is what
-- makes a second active booking for the same person impossible.
CREATE TABLE person_holds (
    doc_key TEXT PRIMARY KEY,
    booking_id TEXT NOT NULL REFERENCES bookings(id)
);
CREATE INDEX person_holds_booking ON person_holds (booking_id);

CREATE TABLE idempotency (
    key TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    booking_code TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

-- Mail waiting to be sent, written in the same transaction as the change it
-- tells about, so a mail server outage loses nothing.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    created_ms BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    sent_ms BIGINT,
    recipient_enc TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_enc TEXT NOT NULL,
    ics_enc TEXT,
    last_error TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_ms) WHERE sent_ms IS NULL;
