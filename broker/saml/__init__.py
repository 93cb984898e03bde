"""SAML 2.0 service-provider edge: parsing, verification and decryption of IdP responses."""
