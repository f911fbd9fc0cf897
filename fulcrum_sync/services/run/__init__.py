"""The sync run: select, claim, fetch and store, patterns, cache, record (``sync``,
its catch-up, the stretches that backfill shares)."""
