-- Production orders to printing vendors: the vendors and their routing, the
-- orders (each an outbox entry until its vendor has it), the vendors' status
-- events applied once, and passport numbers allocated per order (a reprint
-- gets a new number; a number is never printed on two booklets).
-- Portable SQL (TEXT and BIGINT only).

-- One row per printing vendor. Its id is also the key id it signs with.
CREATE TABLE vendors (
    id TEXT PRIMARY KEY,
    base_url TEXT NOT NULL,
    -- The key shared with the vendor, sealed with the service's data key.
    key_enc TEXT NOT NULL,
    -- The production site whose blank booklets it personalises.
    site TEXT NOT NULL,
    -- active | draining (gets no new orders; its unaccepted ones move).
    state TEXT NOT NULL,
    -- Weight among the active vendors a rule allows (0 = none by share).
    share BIGINT NOT NULL,
    -- '*' or a comma list of passport types / office codes it takes.
    passport_types TEXT NOT NULL,
    offices TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    CONSTRAINT vendor_state_known CHECK (state IN ('active', 'draining')),
    CONSTRAINT vendor_share_positive CHECK (share >= 0)
);

CREATE TABLE production_orders (
    order_id TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications(id),
    office_code TEXT NOT NULL,
    -- The vendor that has (or will get) it; NULL while no vendor may take it.
    vendor_id TEXT REFERENCES vendors(id),
    -- queued | dead | accepted | in_production | printed | quality_passed
    -- | shipped | received | quality_failed | mismatch
    state TEXT NOT NULL,
    passport_number TEXT NOT NULL UNIQUE,
    booklet_type TEXT NOT NULL,
    -- The blank booklet reserved for it at its vendor's site.
    booklet_serial TEXT,
    -- The order as sent (protocol JSON), sealed: it holds personal data.
    body_enc TEXT NOT NULL,
    -- Batches it went out in to its current vendor (0: that vendor never
    -- saw it, so it may move without asking).
    sends BIGINT NOT NULL,
    -- Passes that failed in a row; past the limit the order is dead.
    failures BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    -- The last failure or rejection (codes, never personal data).
    last_error TEXT,
    tracking TEXT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    version BIGINT NOT NULL,
    CONSTRAINT order_state_known CHECK (state IN ('queued', 'dead', 'accepted', 'in_production',
        'printed', 'quality_passed', 'shipped', 'received', 'quality_failed', 'mismatch'))
);
CREATE INDEX production_orders_due ON production_orders (state, next_attempt_ms);
CREATE INDEX production_orders_vendor ON production_orders (vendor_id, state);
-- One live order per application: a reprint follows only an ended order.
CREATE UNIQUE INDEX production_orders_one_live ON production_orders (application_id)
    WHERE state NOT IN ('quality_failed', 'mismatch');

-- Every vendor event seen, by the vendor's event id: a replay finds its row
-- and changes nothing.
CREATE TABLE vendor_events (
    vendor_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    -- applied | ignored (out of order, or for an order it no longer has)
    outcome TEXT NOT NULL,
    received_ms BIGINT NOT NULL,
    PRIMARY KEY (vendor_id, event_id)
);

-- Passport numbers now belong to what carries them (a production order, or
-- an emergency issue at an office); an application may hold several over
-- its reprints.
CREATE TABLE passport_numbers_v2 (
    number TEXT PRIMARY KEY,
    holder TEXT NOT NULL UNIQUE,
    application_id TEXT NOT NULL,
    allocated_ms BIGINT NOT NULL
);
INSERT INTO passport_numbers_v2 (number, holder, application_id, allocated_ms)
    SELECT number, application_id, application_id, allocated_ms FROM passport_numbers;
DROP TABLE passport_numbers;
ALTER TABLE passport_numbers_v2 RENAME TO passport_numbers;
CREATE INDEX passport_numbers_application ON passport_numbers (application_id);

-- Issued and annulled applications are ended: the person may apply again.
DROP INDEX applications_one_live_per_person;
CREATE UNIQUE INDEX applications_one_live_per_person ON applications (doc_key)
    WHERE state NOT IN ('rejected', 'cancelled', 'no_show', 'issued', 'annulled');

-- The portrait as the chip holds it (JPEG, sealed), made once at capture:
-- personalisation signs it without decoding an image, and production
-- orders carry no copy of it (DG2 is rebuilt from it when an order is sent).
-- Its own table: an application's state changes do not rewrite it.
CREATE TABLE application_portraits (
    application_id TEXT PRIMARY KEY REFERENCES applications(id),
    chip_portrait_enc TEXT NOT NULL
);
