"""What an operator runs beside the jobs: state, status and its headlines, problems,
holes, doctor, discover, catalog, verify, series, database, retention, completion."""
