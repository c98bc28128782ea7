-- The office workflow: one application per applicant of a booking (or per
-- walk-in), driven by pasaporte_core::application's state machine. Portable
-- SQL (TEXT and BIGINT only); personal data sealed (AES-256-GCM, base64).

CREATE TABLE applications (
    id TEXT PRIMARY KEY,
    -- NULL for a walk-in, who has no booking.
    booking_id TEXT REFERENCES bookings(id),
    position BIGINT NOT NULL,
    office_code TEXT NOT NULL REFERENCES offices(code),
    -- The appointment (a walk-in's: the moment the ticket was issued).
    appointment_ms BIGINT NOT NULL,
    -- Keyed hash of the person's identity (HMAC-SHA256): lookups without clear text.
    doc_key TEXT NOT NULL,
    state TEXT NOT NULL,
    state_since_ms BIGINT NOT NULL,
    -- NULL only in terminal states: every live application has a deadline
    -- and a queue that shows it.
    deadline_ms BIGINT,
    queue TEXT NOT NULL,
    -- The number called out in the waiting room ("A-014"); not personal.
    ticket TEXT NOT NULL,
    counter_name TEXT,
    called_ms BIGINT,
    passport_type TEXT,
    -- Sealed JSON documents (see server/src/workflow.rs for their shape).
    identity_enc TEXT,
    contact_enc TEXT,
    extras_enc TEXT,
    photo_enc TEXT,
    photo_sha256 TEXT,
    signature_enc TEXT,
    -- Comma-separated codes of automatic-check findings (no personal data).
    flags TEXT NOT NULL,
    -- The registry worker's next attempt, while captured or pending registry.
    next_check_ms BIGINT,
    registry_attempts BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    -- Bumped by every change: a write that read an older version is refused.
    version BIGINT NOT NULL
);
CREATE UNIQUE INDEX applications_applicant ON applications (booking_id, position);
CREATE INDEX applications_office_state ON applications (office_code, state);
CREATE INDEX applications_doc_key ON applications (doc_key);
-- One live application per person: what keeps a walk-in and a booked
-- check-in (or two counters) from opening two for the same person.
CREATE UNIQUE INDEX applications_one_live_per_person ON applications (doc_key)
    WHERE state NOT IN ('rejected', 'cancelled', 'no_show');
CREATE INDEX applications_due_check ON applications (next_check_ms);

-- Waiting-room ticket numbers, one counter per office and local day.
CREATE TABLE tickets (
    office_code TEXT NOT NULL REFERENCES offices(code),
    day TEXT NOT NULL,
    last BIGINT NOT NULL,
    PRIMARY KEY (office_code, day)
);

-- Passports reported lost or stolen, by keyed hash of their number: a renewal
-- that names one of them is flagged for a supervisor.
CREATE TABLE reported_passports (
    number_key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    application_id TEXT NOT NULL,
    reported_ms BIGINT NOT NULL
);

-- No-shows are counted per slot; the seat itself stays counted as booked
-- (the time has passed and cannot be offered again).
ALTER TABLE slot_seats ADD COLUMN no_shows BIGINT NOT NULL DEFAULT 0;

-- An application's history is read by subject.
CREATE INDEX audit_events_subject ON audit_events (subject);
