-- A hash of each instance's resolved container spec (env, command, limits, labels, port,
-- health, …): a redeploy of the digest a slot already runs, with the same spec, does nothing.
ALTER TABLE instances ADD COLUMN spec_hash TEXT;
