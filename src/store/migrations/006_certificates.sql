-- Agent certificates expire and are renewed (docs/SECURITY.md,
-- "Certificate lifetime").
-- `cert_expires_at`: the end of the destination's current certificate;
-- NULL for certificates signed before they expired.
-- `prev_fingerprint`: the certificate the last renewal replaced, still
-- accepted until it expires, so an agent that died before saving its new
-- certificate goes on with the old one.
ALTER TABLE destinations ADD COLUMN cert_expires_at INTEGER;
ALTER TABLE destinations ADD COLUMN prev_fingerprint TEXT;
CREATE UNIQUE INDEX destinations_by_prev_fingerprint ON destinations (prev_fingerprint);
