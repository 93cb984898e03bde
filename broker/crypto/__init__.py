"""Keys and secrets: OIDC signing keys and rotation, SP certificates, hashing, encryption
at rest."""
