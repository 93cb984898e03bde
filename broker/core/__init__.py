"""The domain. Standard library only: no aiohttp, pysaml2, Authlib, SQL or DNS here.

Edges (saml, oidc, scim, api, admin) call these functions; the store implements
the ports in broker.core.ports. import-linter keeps it that way.
"""
