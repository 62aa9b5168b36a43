-- One row per message per user: the message as received (CRLF line endings, Received: first) and its envelope.
CREATE TABLE slimmail.messages (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_uid  uuid        NOT NULL UNIQUE,
    queue_id     text        NOT NULL,
    user_name    text        NOT NULL,
    sender       text        NOT NULL,
    recipient    text        NOT NULL,
    size         bigint      NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    body         bytea       NOT NULL
);

-- POP3 lists a user's messages oldest first.
CREATE INDEX messages_user_id ON slimmail.messages (user_name, id);
