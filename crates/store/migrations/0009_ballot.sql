-- Ballot releases (issue 6): the seats of some offices and days are not
-- booked live but requested over a request period and allocated by a draw.

CREATE TABLE releases (
    id TEXT PRIMARY KEY,
    city TEXT NOT NULL,
    -- The offices whose online seats the release offers, joined by ','.
    offices TEXT NOT NULL,
    first_day TEXT NOT NULL,
    last_day TEXT NOT NULL,
    opened_ms BIGINT NOT NULL,
    close_ms BIGINT NOT NULL,
    -- SHA-256 commitment to the seed, published when the release opens.
    commitment TEXT NOT NULL,
    -- The seed, sealed until the draw, then published in clear in `seed`.
    seed_enc TEXT NOT NULL,
    seed TEXT,
    -- open | drawn
    state TEXT NOT NULL,
    drawn_ms BIGINT,
    inputs_digest TEXT,
    offers_txt TEXT,
    requests_txt TEXT,
    outcome_txt TEXT,
    created_by TEXT NOT NULL
);

-- A request is a `bookings` row (its code, mail, applicants and person
-- holds are a booking's) with no slot yet: status `unverified` until the
-- email is proven, `requested` in the draw, `waitlisted` after losing it,
-- `offered` while a freed seat waits for its answer, `active` once seated,
-- `expired` or `withdrawn` when it ends without a seat.
CREATE TABLE ballot_requests (
    booking_id TEXT PRIMARY KEY REFERENCES bookings(id),
    release_id TEXT NOT NULL REFERENCES releases(id),
    -- The ranked preferences in the published file's syntax.
    preferences TEXT NOT NULL,
    -- Keyed hash of the person for this release's published files.
    person TEXT NOT NULL,
    verified_ms BIGINT,
    -- Keyed hashes for scalper signals: the client's device and phone.
    device_key TEXT NOT NULL,
    phone_key TEXT,
    -- Position on the release's waitlist, in draw order.
    waitlist_position BIGINT,
    offer_deadline_ms BIGINT
);
CREATE INDEX ballot_requests_release ON ballot_requests (release_id, waitlist_position);
CREATE INDEX ballot_requests_device ON ballot_requests (release_id, device_key);

-- Reconfirmation: when the citizen confirmed, and when the reminder went.
ALTER TABLE bookings ADD COLUMN confirmed_ms BIGINT;
ALTER TABLE bookings ADD COLUMN reminded_ms BIGINT;
CREATE INDEX bookings_status_start ON bookings (status, start_ms);
