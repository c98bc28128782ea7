-- Re-seating on an office closure or a capacity drop (issue 6 item 7).

-- A day on which an office runs fewer counters than usual: its slots hold
-- `counters` people per service time. The lowered capacity is also written
-- into `slot_seats.capacity` for the day's slots, so the database refuses a
-- booking above it; this row is the record of why.
CREATE TABLE capacity_cuts (
    office_code TEXT NOT NULL REFERENCES offices(code),
    day TEXT NOT NULL,
    counters BIGINT NOT NULL,
    reason TEXT NOT NULL,
    CONSTRAINT capacity_cut_counters_not_negative CHECK (counters >= 0),
    PRIMARY KEY (office_code, day)
);

-- Bookings left without a seat by a closure (no equivalent seat within the
-- horizon) have status 'displaced': no seat held, the person still held,
-- waiting for the citizen's choice. Listed for supervisors.
CREATE INDEX bookings_status ON bookings (status, office_code);
