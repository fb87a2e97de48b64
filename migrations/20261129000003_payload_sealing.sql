-- Encryption at rest (DESIGN §4): a payload sealed with AES-256-GCM holds
-- nonce ‖ ciphertext ‖ tag, and payload_key_id names the key it is sealed under (NULL: the
-- payload is stored clear). payload_sha256 stays over the plaintext, so dedup still compares
-- bodies. Adding a NULL column is instant; the check is NOT VALID, so it is enforced on every
-- write from now on without scanning the rows already there (none of which has a key id).
ALTER TABLE events ADD COLUMN payload_key_id text;
ALTER TABLE events ADD CONSTRAINT events_key_id_needs_payload
    CHECK (payload IS NOT NULL OR payload_key_id IS NULL) NOT VALID;
