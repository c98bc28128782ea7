-- The keys a deployment seals and looks people up with, by check value only
-- (a keyed hash of a fixed text: it tells two keys apart and reveals
-- neither). A node whose keys disagree with these refuses to start.
-- `sealing_since_ms`: when a node first sealed with the data key (NULL: only
-- known so far), after which every node must have it.
CREATE TABLE deployment_keys (
    kind TEXT NOT NULL CHECK (kind IN ('data', 'lookup')),
    key_id TEXT NOT NULL,
    check_value TEXT NOT NULL,
    first_seen_ms BIGINT NOT NULL,
    sealing_since_ms BIGINT,
    PRIMARY KEY (kind, key_id)
);
