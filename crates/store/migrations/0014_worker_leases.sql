-- Which node runs each background worker: one holder at a time, until its
-- lease runs out (renewed every pass); a node that dies loses it when
-- `until_ms` passes and another node takes the work over.
CREATE TABLE worker_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);
