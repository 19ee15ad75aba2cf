-- The newest events, so that a restarted Stride continues their numbering and resumes
-- event-stream clients and callback subscribers from where they were.
CREATE TABLE event_journal (
    seq BIGINT PRIMARY KEY NOT NULL,
    data TEXT NOT NULL
);

-- HTTP callback subscribers, the last event each has been sent, and whether it takes arrays
-- of events (1) or one event per request (0, Marathon's way).
CREATE TABLE event_subscriptions (
    callback_url TEXT PRIMARY KEY NOT NULL,
    client_ip TEXT NOT NULL,
    subscribed_at BIGINT NOT NULL,
    delivered BIGINT NOT NULL,
    batch BIGINT NOT NULL DEFAULT 0
);
