-- The keys a deployment seals and looks people up with, by check value only
-- (a keyed hash of a fixed text: it tells two keys apart and reveals
-- neither). A node whose keys disagree with these refuses to start.
CREATE TABLE deployment_keys (
    kind TEXT NOT NULL CHECK (kind IN ('data', 'lookup')),
    key_id TEXT NOT NULL,
    check_value TEXT NOT NULL,
    first_seen_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, key_id)
);
