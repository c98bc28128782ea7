-- Office release policies and the capacity split per slot (issue 6, items 5-6).
-- Portable SQL, as 0001.

-- One row per office that has a policy; an office without one releases every
-- seat online, live (`OfficePolicy::default`).
CREATE TABLE office_policies (
    office_code TEXT PRIMARY KEY REFERENCES offices(code),
    -- live | ballot
    release_mode TEXT NOT NULL,
    online_pct BIGINT NOT NULL,
    urgent_pct BIGINT NOT NULL,
    walk_in_pct BIGINT NOT NULL,
    priority_pct BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    CONSTRAINT office_policy_shares CHECK (
        online_pct >= 0 AND urgent_pct >= 0 AND walk_in_pct >= 0 AND priority_pct >= 0
        AND online_pct + urgent_pct + walk_in_pct + priority_pct = 100),
    CONSTRAINT office_policy_mode CHECK (release_mode IN ('live', 'ballot'))
);

-- slot_seats gains a pool dimension: one row per slot and pool, each with
-- its own capacity, so the CHECK keeps every pool within its share. SQLite
-- cannot change a primary key, so the table is rebuilt; existing rows were
-- all online seats.
CREATE TABLE slot_seats_by_pool (
    office_code TEXT NOT NULL REFERENCES offices(code),
    start_ms BIGINT NOT NULL,
    -- online | urgent | walk_in | priority (`pasaporte_core::shares::Pool`)
    pool TEXT NOT NULL,
    capacity BIGINT NOT NULL,
    booked BIGINT NOT NULL,
    no_shows BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT seats_within_capacity CHECK (booked >= 0 AND booked <= capacity),
    CONSTRAINT seats_pool_known CHECK (pool IN ('online', 'urgent', 'walk_in', 'priority')),
    PRIMARY KEY (office_code, start_ms, pool)
);
INSERT INTO slot_seats_by_pool (office_code, start_ms, pool, capacity, booked, no_shows)
    SELECT office_code, start_ms, 'online', capacity, booked, no_shows FROM slot_seats;
DROP TABLE slot_seats;
ALTER TABLE slot_seats_by_pool RENAME TO slot_seats;

-- Which pool a booking's seats came from, and, for an urgent seat, the
-- supervisor's evidence (sealed like every personal field).
ALTER TABLE bookings ADD COLUMN pool TEXT NOT NULL DEFAULT 'online';
ALTER TABLE bookings ADD COLUMN evidence_enc TEXT;
