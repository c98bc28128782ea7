-- Generations of what every node keeps in memory: each write that changes
-- an office's seats (`seats:CODE`), the offices' rules (`offices`: offices,
-- closures, capacity cuts, policies) or the ballot releases' coverage
-- (`releases`) adds one to its scope's row in the same transaction. A node
-- reads this small table a few times a second and drops what moved, so a
-- change made on one node reaches the others' caches promptly.
CREATE TABLE cache_generations (
    scope TEXT PRIMARY KEY,
    generation BIGINT NOT NULL
);
