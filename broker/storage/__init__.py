"""SQLite storage: the only package that speaks SQL. Implements the core's ports."""
