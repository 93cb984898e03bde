"""upstream_oidc edge."""
