"""Call records: one row per hotline call (start, menu path, outcome), the source of the
platform's CallRecord and of the supervisors' figures."""
