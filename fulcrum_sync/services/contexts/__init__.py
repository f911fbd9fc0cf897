"""The contexts a command works on: the catalog (load, check, require), discovery, and the
one selection that sync, patterns, cache-load and backfill share."""
