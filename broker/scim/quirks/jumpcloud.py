"""JumpCloud provisioning.

Source: IDP-NOTES "SCIM clients" (from JumpCloud's SCIM integration guide,
jumpcloud.com/support/scim-integration-guide).

- Renames a group with a path-less `replace` carrying `{"displayName": …}`, and adds
  members with lowercase `add` on `members`. Both are standard RFC 7644 §3.5.2 forms,
  so no rewriting is needed: broker.scim.patch handles them and
  tests/scim/test_quirks.py pins the exact requests. Declared here so that the vendor's
  behaviour has one home, like every other vendor's.
"""

from __future__ import annotations

from broker.scim.quirks import Quirk

QUIRK = Quirk(vendor="jumpcloud", source="jumpcloud.com/support/scim-integration-guide")
