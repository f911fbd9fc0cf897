"""What every job shares: its run record, claims and leases, workers (``runner``), and the
run keys of its sync and pattern items (``keys``)."""
