"""Presets and attribute mapping: one fixture per vendor in that vendor's attribute names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from broker.errors import LoginRefused
from broker.saml.mapping import authn_context_to_acr_amr, map_attributes
from broker.saml.presets import GENERIC, PRESETS, get_preset

DATA = Path(__file__).resolve().parents[1] / "data" / "saml"
FIXTURES = sorted(DATA.glob("*/attributes*.json"))


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _as_dict(profile) -> dict:
    return {
        "email": profile.email,
        "given_name": profile.given_name,
        "family_name": profile.family_name,
        "groups": list(profile.groups),
        "idp_id": profile.idp_id,
        "groups_overage": profile.groups_overage,
    }


def test_every_preset_has_a_fixture() -> None:
    covered = {_load(path)["preset"] for path in FIXTURES}
    assert covered == set(PRESETS)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_fixture_maps_with_its_preset(path: Path) -> None:
    case = _load(path)
    profile = map_attributes(
        get_preset(case["preset"]), case["attributes"], case["name_id"], case["name_id_format"], {}
    )
    assert _as_dict(profile) == case["expected"]
    assert set(profile.raw_attributes) == set(case["attributes"])


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_generic_alias_table_still_finds_email_and_names(path: Path) -> None:
    # The alias table behind every preset must cover the names vendors really use.
    case = _load(path)
    profile = map_attributes(GENERIC, case["attributes"], case["name_id"], case["name_id_format"])
    expected = case["expected"]
    assert profile.email == expected["email"]
    assert (profile.given_name, profile.family_name) == (
        expected["given_name"],
        expected["family_name"],
    )
    assert list(profile.groups) == expected["groups"]


def test_overage_detected_without_groups() -> None:
    case = _load(DATA / "entra" / "attributes-overage.json")
    profile = map_attributes(
        PRESETS["entra"], case["attributes"], case["name_id"], case["name_id_format"]
    )
    assert profile.groups_overage is True
    assert profile.groups == ()
    normal = _load(DATA / "entra" / "attributes.json")
    assert (
        map_attributes(
            PRESETS["entra"], normal["attributes"], normal["name_id"], None
        ).groups_overage
        is False
    )


def test_override_wins_and_is_exclusive() -> None:
    attributes = {
        "email": ["ada@old.example.com"],
        "mail": ["ada.lovelace@example.com"],
        "groups": ["Engineering"],
        "department": ["R&D"],
    }
    okta = PRESETS["okta"]
    profile = map_attributes(okta, attributes, "ada@nameid.example.com", None, {"email": "mail"})
    assert profile.email == "ada.lovelace@example.com"
    profile = map_attributes(okta, attributes, "x", None, {"groups": "department"})
    assert profile.groups == ("R&D",)
    # An override naming an absent attribute does not fall back to other names.
    profile = map_attributes(okta, attributes, "x", None, {"groups": "teams"})
    assert profile.groups == ()
    profile = map_attributes(okta, attributes, "ada@nameid.example.com", None, {"email": "nope"})
    assert profile.email == "ada@nameid.example.com"  # the NameID fallback still applies
    with pytest.raises(ValueError):
        map_attributes(okta, attributes, "x", None, {"role": "department"})


def test_case_insensitive_names_and_empty_values() -> None:
    attributes = {"user.EMAIL": ["ada.lovelace@example.com"], "MEMBEROF": ["", "a", "a", "b"]}
    profile = map_attributes(PRESETS["onelogin"], attributes, "", None)
    assert profile.email == "ada.lovelace@example.com"
    assert profile.groups == ("a", "b")


def test_email_needs_an_address_shape() -> None:
    attributes = {
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name": ["alovelace"],
        "http://schemas.microsoft.com/identity/claims/objectidentifier": ["oid-1"],
    }
    entra = PRESETS["entra"]
    email_format = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    profile = map_attributes(entra, attributes, "ada.lovelace@example.com", email_format)
    assert profile.email == "ada.lovelace@example.com"  # NameID fallback
    profile = map_attributes(entra, attributes, "alovelace", email_format)
    assert profile.email is None
    assert profile.idp_id == "oid-1"


def test_transient_nameid_is_not_a_subject() -> None:
    transient = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
    profile = map_attributes(GENERIC, {"mail": ["ada@example.com"]}, "_abc", transient)
    assert profile.idp_id == "ada@example.com"
    with pytest.raises(LoginRefused) as caught:
        map_attributes(GENERIC, {"givenName": ["Ada"]}, "_abc", transient)
    assert caught.value.reason == "no_subject"


def test_preset_declarations() -> None:
    assert len(PRESETS) == 12
    for preset in PRESETS.values():
        assert preset.source.startswith("https://"), preset.key
        assert preset.guidance and preset.acs_url_label and preset.entity_id_label
        assert not preset.allow_sha1  # SHA-1 is an explicit opt-in per connection
    assert PRESETS["rippling"].placeholder_in_response_to_on_idp_initiated
    assert not PRESETS["okta"].placeholder_in_response_to_on_idp_initiated
    assert PRESETS["jumpcloud"].binding == "post"  # its metadata lists HTTP-POST only
    assert PRESETS["entra"].groups_are_ids
    assert PRESETS["adfs"].strict_requested_authn_context
    assert PRESETS["adfs"].encrypts_if_sp_has_encryption_cert
    assert PRESETS["okta"].entity_id_label == "Audience URI (SP Entity ID)"
    assert PRESETS["entra"].acs_url_label == "Reply URL (Assertion Consumer Service URL)"
    with pytest.raises(KeyError):
        get_preset("keycloak")


@pytest.mark.parametrize(
    ("class_ref", "methods", "acr", "amr"),
    [
        (
            "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
            [],
            "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
            ["pwd"],
        ),
        ("urn:oasis:names:tc:SAML:2.0:ac:classes:X509", [], None, ["x509"]),
        ("http://schemas.microsoft.com/claims/multipleauthn", [], None, ["mfa"]),
        ("urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified", [], None, []),
        (None, [], None, []),
        (
            "urn:oasis:names:tc:SAML:2.0:ac:classes:Password",
            [
                "http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password",
                "http://schemas.microsoft.com/claims/multipleauthn",
            ],
            None,
            ["pwd", "mfa"],
        ),
        (
            "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
            ["http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/x509"],
            None,
            ["pwd", "x509", "mfa"],
        ),
        ("urn:federation:authentication:windows", [], None, ["kerberos"]),
    ],
)
def test_authn_context_to_acr_amr(class_ref, methods, acr, amr) -> None:
    got_acr, got_amr = authn_context_to_acr_amr(class_ref, methods)
    assert got_acr == (acr if acr is not None else class_ref)
    assert got_amr == amr
