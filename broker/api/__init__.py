"""api edge."""
