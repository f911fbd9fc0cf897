"""Analysis patterns on stored data: the ``patterns`` command, the one step a sync,
a catch-up and a backfill run them through, and the data they read."""
