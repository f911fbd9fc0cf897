"""What an operator runs beside the jobs: state, status and its headlines, problems,
holes, doctor, verify, series, database, retention, completion."""
