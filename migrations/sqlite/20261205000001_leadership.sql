-- Who leads: one row. Each election raises `term`, and a leader's writes end by checking that
-- its term still holds the lease (`expires_at`, milliseconds since the epoch on the database's
-- clock), so a Stride that lost the leadership can never write again. `holds_lock` says whether
-- the leader also holds the advisory lock: when it does, a standby that gets the lock knows the
-- leader's session has ended and need not wait for the lease to run out. (SQLite has one Stride
-- and no election; the row is there so that both schemas are the same.)
CREATE TABLE leadership (
    id BIGINT PRIMARY KEY NOT NULL,
    term BIGINT NOT NULL,
    holder TEXT NOT NULL,
    leader TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    holds_lock BIGINT NOT NULL
);
INSERT INTO leadership (id, term, holder, leader, expires_at, holds_lock) VALUES (1, 0, '', '', 0, 0);
