-- Payments: one reference per application, the gateway's events (each applied
-- once), and fee waivers. Amounts are in the currency's minor unit (whole
-- pesos for COP, cents for USD and EUR; see pasaporte_core::fees::Currency).
-- Ids and staff text only: no personal data in any column.

CREATE TABLE payment_references (
    reference TEXT PRIMARY KEY,
    application_id TEXT NOT NULL UNIQUE,
    office_code TEXT NOT NULL REFERENCES offices(code),
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    -- created | paid | refund_pending | refunded | waived
    status TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    paid_ms BIGINT,
    refunded_ms BIGINT,
    CONSTRAINT payment_status_known CHECK (status IN ('created', 'paid', 'refund_pending', 'refunded', 'waived')),
    CONSTRAINT payment_amount_not_negative CHECK (amount_minor >= 0)
);
CREATE INDEX payment_references_office ON payment_references (office_code, created_ms);
CREATE INDEX payment_references_status ON payment_references (status, created_ms);

-- Every callback event applied. The primary key on event_id is what applies an
-- event once: a replayed event's insert is refused and nothing else changes.
CREATE TABLE payment_events (
    event_id TEXT PRIMARY KEY,
    reference TEXT NOT NULL REFERENCES payment_references(reference),
    -- payment.confirmed | refund.completed
    kind TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    received_ms BIGINT NOT NULL
);
CREATE INDEX payment_events_reference ON payment_events (reference);

-- Fee waivers (vulnerable groups). `reason` is staff text without personal
-- data. office_code lets a supervisor list their office's requests.
CREATE TABLE waivers (
    application_id TEXT PRIMARY KEY,
    office_code TEXT NOT NULL REFERENCES offices(code),
    reason TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_ms BIGINT NOT NULL,
    decided_by TEXT,
    decided_ms BIGINT,
    -- requested | approved | refused
    status TEXT NOT NULL,
    CONSTRAINT waiver_status_known CHECK (status IN ('requested', 'approved', 'refused'))
);
CREATE INDEX waivers_status ON waivers (status, office_code);
