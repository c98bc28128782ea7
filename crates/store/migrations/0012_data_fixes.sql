-- One-off fixes of stored data that only the server can make (they need its
-- keys), each recorded once done so that it runs once.
CREATE TABLE data_fixes (
    name TEXT PRIMARY KEY,
    done_ms BIGINT NOT NULL
);
