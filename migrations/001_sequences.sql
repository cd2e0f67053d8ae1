-- +goose Up
-- One row per (application, user): the last legacy-signature sequence handed
-- out. Rows are only ever changed by one atomic
-- INSERT ... ON CONFLICT ... DO UPDATE, so the value never goes back.
-- Plain SQL on purpose: CockroachDB must accept it too.
CREATE TABLE sequences (
    application_key text NOT NULL,
    user_id text NOT NULL,
    sequence bigint NOT NULL,
    PRIMARY KEY (application_key, user_id),
    CONSTRAINT sequences_sequence_nonnegative CHECK (sequence >= 0)
);

-- +goose Down
DROP TABLE sequences;
