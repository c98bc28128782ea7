-- Production: blank booklets and their custody, and passport numbers.
-- Portable SQL (TEXT and BIGINT only); see pasaporte_core::production for the
-- states, the custody graph and the number formats. No personal data: a
-- custody record's detail is staff text (a reason, a witness).

-- One row per blank booklet, from its receipt at a site until its custody ends.
CREATE TABLE booklets (
    serial TEXT PRIMARY KEY,
    -- pages8 | pages28 | pages32 | pages48
    booklet_type TEXT NOT NULL,
    -- The production site (or office, for emergency stock) that holds it.
    site TEXT NOT NULL,
    state TEXT NOT NULL,
    state_since_ms BIGINT NOT NULL,
    -- Set when reserved for an application; cleared by a release.
    application_id TEXT,
    -- Set when personalised.
    passport_number TEXT,
    CONSTRAINT booklet_type_known CHECK (booklet_type IN ('pages8', 'pages28', 'pages32', 'pages48')),
    CONSTRAINT booklet_state_known CHECK (state IN ('in_stock', 'reserved', 'personalised', 'spoiled',
        'destroyed', 'dispatched', 'at_office', 'handed_over', 'annulled'))
);
-- What reserving takes the first of, and what stock levels count.
CREATE INDEX booklets_stock ON booklets (site, booklet_type, state, serial);
CREATE INDEX booklets_application ON booklets (application_id);

-- Every change of a booklet's state, written in the same transaction as the
-- change: seq runs 1..n per serial without gaps, and each from_state is the
-- previous to_state (the receipt's from_state is NULL).
CREATE TABLE booklet_events (
    serial TEXT NOT NULL REFERENCES booklets(serial),
    seq BIGINT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    -- receive | reserve | release | personalise | spoil | destroy | dispatch
    -- | receive_at_office | hand_over | annul
    event TEXT NOT NULL,
    -- The spoil or annul reason, or the destruction's witness.
    detail TEXT,
    actor TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (serial, seq)
);
CREATE INDEX booklet_events_at ON booklet_events (event, at_ms);

-- Every passport number ever allocated: the primary key is what keeps a
-- number from being used twice, the unique application_id what gives one
-- application one number.
CREATE TABLE passport_numbers (
    number TEXT PRIMARY KEY,
    application_id TEXT NOT NULL UNIQUE,
    allocated_ms BIGINT NOT NULL
);

-- The next sequence of each two-letter series; it only grows.
CREATE TABLE passport_number_series (
    series TEXT PRIMARY KEY,
    next BIGINT NOT NULL,
    CONSTRAINT passport_number_series_next_positive CHECK (next >= 1)
);
