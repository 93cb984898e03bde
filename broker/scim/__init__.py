"""scim edge."""
