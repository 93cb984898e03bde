"""CLI twins: directory enable|show|rotate-token|journal|drift|disable, role-mapping."""

from __future__ import annotations

import json

from broker.cli import main
from broker.storage.store import SQLiteStore
from tests.scim.conftest import make_org


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, (json.loads(out) if "--json" in argv and out.strip() else out)


def test_directory_and_role_mapping_commands(settings, capsys):
    store = SQLiteStore.open(settings.database)
    try:
        org = make_org(store)
    finally:
        store.close()
    code, enabled = run(capsys, "directory", "enable", "--org", org, "--json")
    assert code == 0 and enabled["token"].startswith("brk_scim_")
    assert enabled["scim_base_url"].endswith(f"/scim/v2/{enabled['directory_id']}")
    code, shown = run(capsys, "directory", "show", "--org", org, "--json")
    assert shown["state"] == "active" and "token" not in json.dumps(shown).lower().replace(
        "previous_token_valid_until", ""
    )
    code, rotated = run(capsys, "directory", "rotate-token", "--org", org, "--json")
    assert code == 0 and rotated["token"] != enabled["token"]
    code, added = run(
        capsys,
        "role-mapping",
        "add",
        "--org",
        org,
        "--group",
        "Admins",
        "--role",
        "admin",
        "--priority",
        "5",
        "--json",
    )
    assert code == 0 and added["role"] == "admin"
    code, listed = run(capsys, "role-mapping", "list", "--org", org, "--json")
    assert [m["id"] for m in listed] == [added["id"]]
    code, _ = run(capsys, "role-mapping", "remove", added["id"], "--org", org)
    assert code == 0
    code, drift = run(capsys, "directory", "drift", "--org", org, "--json")
    assert code == 0 and drift["users"] == []
    code, journal = run(capsys, "directory", "journal", "--org", org, "--json")
    assert code == 0 and journal == []
    code, disabled = run(capsys, "directory", "disable", "--org", org, "--json")
    assert disabled["directory_sync_enabled"] is False
    assert main(["directory", "rotate-token", "--org", org]) == 1
