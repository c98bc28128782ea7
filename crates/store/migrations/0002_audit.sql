-- The audit trail: a hash chain (see pasaporte_core::audit). One row per
-- event, numbered from 1 without gaps; `hash` = SHA-256(prev_hash || seq ||
-- canonical(event)), hex. The primary key on seq is what keeps two writers
-- from both appending event n+1: the second insert fails and its transaction
-- is retried. Ids only: no personal data in any column.
CREATE TABLE audit_events (
    seq BIGINT PRIMARY KEY,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    office TEXT NOT NULL,
    subject TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT,
    detail TEXT NOT NULL
);

-- Signed heads of the chain: an Ed25519 signature (hex) over
-- {seq, hash, signed_at_ms, key_id}, made with a key the database never holds.
CREATE TABLE audit_checkpoints (
    seq BIGINT PRIMARY KEY,
    hash TEXT NOT NULL,
    signed_at_ms BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL
);
