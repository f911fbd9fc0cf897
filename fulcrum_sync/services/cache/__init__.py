"""Loading the cache tables (``cache-load`` and ``sync --cache-load``) and their
destinations per tenant."""
