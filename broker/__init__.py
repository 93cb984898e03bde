"""Exec Identity Broker: SAML/OIDC in, OpenID Connect and a SCIM-fed directory out."""

__version__ = "0.1.0"
