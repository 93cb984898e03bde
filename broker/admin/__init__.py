"""admin edge."""
