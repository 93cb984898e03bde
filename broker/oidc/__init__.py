"""oidc edge."""
