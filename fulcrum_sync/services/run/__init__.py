"""The sync run: select, claim, fetch and store, patterns, cache, record (``sync``,
its catch-up), and the run keys and workers every job shares."""
