"""PostgreSQL-only speed paths, each behind a documented contract with the portable code."""
